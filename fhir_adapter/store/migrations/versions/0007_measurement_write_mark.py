"""A write mark on each measurement row, so that views kept per participant know which
participants a write changed without reading every row.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # rows written before carry 0: a stamp needs only to change with the next write (an
    # added column with a default: no copy of the table, on SQLite either)
    op.add_column("measurement", sa.Column("write_mark", sa.BigInteger(), nullable=False,
                                           server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("measurement") as batch:
        batch.drop_column("write_mark")
