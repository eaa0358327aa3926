"""The outbox lease apart from the time of the next try: a claim is exclusive across senders.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as table:
        table.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("lease_holder", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as table:
        table.drop_column("lease_holder")
        table.drop_column("lease_until")
