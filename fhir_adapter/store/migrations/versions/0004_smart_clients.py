"""SMART Backend Services: registered clients, the assertions they spent, access tokens issued.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_DOCUMENT = sa.JSON().with_variant(JSONB(), "postgresql")
_INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "smart_client",
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("jwks", _DOCUMENT, nullable=True),
        sa.Column("jwks_url", sa.Text(), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("created_at", _INSTANT, nullable=False),
        sa.Column("revoked_at", _INSTANT, nullable=True),
        sa.PrimaryKeyConstraint("client_id", name="pk_smart_client"),
    )
    op.create_table(
        "smart_assertion",
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("jti", sa.String(255), nullable=False),
        sa.Column("expires_at", _INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name="pk_smart_assertion"),
    )
    op.create_index("ix_smart_assertion_expires_at", "smart_assertion", ["expires_at"])
    op.create_table(
        "smart_access_token",
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("issued_at", _INSTANT, nullable=False),
        sa.Column("expires_at", _INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_smart_access_token"),
    )
    op.create_index("ix_smart_access_token_expires_at", "smart_access_token", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_smart_access_token_expires_at", "smart_access_token")
    op.drop_table("smart_access_token")
    op.drop_index("ix_smart_assertion_expires_at", "smart_assertion")
    op.drop_table("smart_assertion")
    op.drop_table("smart_client")
