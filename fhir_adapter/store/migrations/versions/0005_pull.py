"""Bulk Data pulls: the export in progress per EHR, and the watermark of the next _since.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pull_job",
        sa.Column("base_url", sa.String(500), nullable=False),
        sa.Column("status_url", sa.Text(), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("kicked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("manifest", sa.JSON().with_variant(JSONB(), "postgresql")),
        sa.PrimaryKeyConstraint("base_url", name="pk_pull_job"),
    )
    op.create_table(
        "pull_watermark",
        sa.Column("base_url", sa.String(500), nullable=False),
        sa.Column("transaction_time", sa.String(40), nullable=False),
        sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("base_url", name="pk_pull_watermark"),
    )


def downgrade() -> None:
    op.drop_table("pull_watermark")
    op.drop_table("pull_job")
