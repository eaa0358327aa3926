"""Bulk Data export jobs.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_DOCUMENT = sa.JSON().with_variant(JSONB(), "postgresql")
_INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "bulk_export",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("parameters", _DOCUMENT, nullable=False),
        sa.Column("client", sa.String(200), nullable=False),
        sa.Column("created_at", _INSTANT, nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("heartbeat_at", _INSTANT, nullable=True),
        sa.Column("transaction_time", _INSTANT, nullable=True),
        sa.Column("finished_at", _INSTANT, nullable=True),
        sa.Column("expires_at", _INSTANT, nullable=True),
        sa.Column("polled_at", _INSTANT, nullable=True),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("output", _DOCUMENT, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_bulk_export"),
    )
    op.create_index("ix_bulk_export_status", "bulk_export", ["status"])


def downgrade() -> None:
    op.drop_index("ix_bulk_export_status", "bulk_export")
    op.drop_table("bulk_export")
