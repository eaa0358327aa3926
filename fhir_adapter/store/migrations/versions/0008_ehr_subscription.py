"""Subscriptions the adapter holds on EHRs: their secret, state and event watermark.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ehr_subscription",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("base_url", sa.String(500), nullable=False),
        sa.Column("remote_id", sa.String(200)),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("criteria", sa.Text(), nullable=False),
        sa.Column("catch_up", sa.Text(), nullable=False),
        sa.Column("content", sa.String(20), nullable=False),
        sa.Column("secret_hash", sa.String(80), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("heartbeat_seconds", sa.Integer()),
        sa.Column("events_processed", sa.BigInteger()),
        sa.Column("caught_up_at", sa.String(40)),
        sa.Column("created_at", _INSTANT, nullable=False),
        sa.Column("last_seen_at", _INSTANT),
        sa.Column("notifications", sa.Integer(), nullable=False),
        sa.Column("catch_ups", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_ehr_subscription"),
    )


def downgrade() -> None:
    op.drop_table("ehr_subscription")
