"""The first tables: resources, participants, measurements, results, outbox, audit.

Revision ID: 0001
Revises:
Create Date: 2024-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

DOC = sa.JSON().with_variant(JSONB(), "postgresql")
INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "resource",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("sender", sa.String(200), nullable=False),
        sa.Column("status", sa.String(40)),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("current", DOC, nullable=False),
        sa.Column("received_at", INSTANT, nullable=False),
        sa.Column("last_updated", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_resource"),
    )
    op.create_index("ix_resource_type", "resource", ["type"])
    op.create_table(
        "resource_key",
        sa.Column("key", sa.String(600), nullable=False),
        sa.Column("resource_id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_resource_key"),
        sa.ForeignKeyConstraint(
            ["resource_id"], ["resource.id"], name="fk_resource_key_resource_id_resource",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_resource_key_resource_id", "resource_key", ["resource_id"])
    op.create_table(
        "resource_version",
        sa.Column("resource_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("sender", sa.String(200), nullable=False),
        sa.Column("received_at", INSTANT, nullable=False),
        sa.Column("content", DOC, nullable=False),
        sa.PrimaryKeyConstraint("resource_id", "version", name="pk_resource_version"),
        sa.ForeignKeyConstraint(
            ["resource_id"], ["resource.id"], name="fk_resource_version_resource_id_resource",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "participant",
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("patient_id", sa.String(32)),
        sa.Column("research_subject_id", sa.String(32)),
        sa.Column("sex", sa.String(20)),
        sa.Column("birth_date", sa.Date),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("enrolled_at", INSTANT, nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("subject", name="pk_participant"),
        sa.UniqueConstraint("patient_id", name="uq_participant_patient_id"),
    )
    op.create_table(
        "enrollment",
        sa.Column("system", sa.String(300), nullable=False),
        sa.Column("value", sa.String(300), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("system", "value", name="pk_enrollment"),
        sa.ForeignKeyConstraint(
            ["subject"], ["participant.subject"], name="fk_enrollment_subject_participant"
        ),
    )
    op.create_table(
        "measurement",
        sa.Column("resource_id", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("analyte", sa.String(64), nullable=False),
        sa.Column("value", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("comparator", sa.String(2)),
        sa.Column("at", INSTANT, nullable=False),
        sa.Column("day_precision", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("uln", sa.String(64)),
        sa.Column("code", sa.String(100), nullable=False),
        sa.Column("specimen_key", sa.String(600)),
        sa.PrimaryKeyConstraint("resource_id", name="pk_measurement"),
        sa.ForeignKeyConstraint(
            ["resource_id"], ["resource.id"], name="fk_measurement_resource_id_resource",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subject"], ["participant.subject"], name="fk_measurement_subject_participant"
        ),
    )
    op.create_index("ix_measurement_subject", "measurement", ["subject"])
    op.create_index("ix_measurement_specimen_key", "measurement", ["specimen_key"])
    op.create_table(
        "infusion",
        sa.Column("resource_id", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("at", INSTANT, nullable=False),
        sa.Column("day_precision", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("dose", sa.String(64)),
        sa.Column("dose_unit", sa.String(64)),
        sa.PrimaryKeyConstraint("resource_id", name="pk_infusion"),
        sa.ForeignKeyConstraint(
            ["resource_id"], ["resource.id"], name="fk_infusion_resource_id_resource",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subject"], ["participant.subject"], name="fk_infusion_subject_participant"
        ),
    )
    op.create_index("ix_infusion_subject", "infusion", ["subject"])
    op.create_table(
        "endpoint_result",
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("resource", DOC, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("last_updated", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_endpoint_result"),
    )
    op.create_index("ix_endpoint_result_subject", "endpoint_result", ["subject"])
    op.create_index("ix_endpoint_result_last_updated", "endpoint_result", ["last_updated"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("result_key", sa.String(400), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", INSTANT, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("delivered_at", INSTANT),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_state_next_attempt_at", "outbox", ["state", "next_attempt_at"])
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("at", INSTANT, nullable=False),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("resources", DOC, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
    )


def downgrade() -> None:
    for name in (
        "audit", "outbox", "endpoint_result", "infusion", "measurement", "enrollment",
        "participant", "resource_version", "resource_key", "resource",
    ):
        op.drop_table(name)
