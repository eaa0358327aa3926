"""A participant whose recomputation failed stays queued with the reason, apart from the queue.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recompute_pending") as table:
        table.add_column(sa.Column("fault", sa.Text(), nullable=True))
        table.add_column(sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recompute_pending") as table:
        table.drop_column("failed_at")
        table.drop_column("fault")
