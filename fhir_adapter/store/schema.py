"""The tables of the store (SQLAlchemy Core); the migrations create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = [
    "adapter_secret",
    "audit",
    "bulk_export",
    "ehr_subscription",
    "endpoint_result",
    "enrollment",
    "infusion",
    "measurement",
    "metadata",
    "outbox",
    "participant",
    "pull_job",
    "pull_watermark",
    "recompute_pending",
    "resource",
    "resource_key",
    "resource_version",
    "smart_access_token",
    "smart_assertion",
    "smart_client",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: JSON documents: JSONB on PostgreSQL, JSON text elsewhere.
Document = JSON().with_variant(JSONB(), "postgresql")
Instant = DateTime(timezone=True)


def _owner() -> ForeignKey:
    """The owning resource; its rows go with it."""
    return ForeignKey("resource.id", ondelete="CASCADE")


resource = Table(
    "resource",
    metadata,
    Column("id", String(32), primary_key=True),  # adapter id, uuid4 hex
    Column("type", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("sender", String(200), nullable=False),
    Column("status", String(40)),
    Column("content_hash", String(64), nullable=False),
    Column("current", Document, nullable=False),  # the latest version as received
    Column("received_at", Instant, nullable=False),
    Column("last_updated", Instant, nullable=False),
    Index(None, "type"),
)

resource_key = Table(
    "resource_key",
    metadata,
    # ident|Type|system|value, id|Type|sender|id, uuid|Type|uuid
    Column("key", String(600), primary_key=True),
    Column("resource_id", String(32), _owner(), nullable=False),
    Index(None, "resource_id"),
)

resource_version = Table(
    "resource_version",
    metadata,
    Column("resource_id", String(32), _owner(), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("sender", String(200), nullable=False),
    Column("received_at", Instant, nullable=False),
    Column("content", Document, nullable=False),
)

participant = Table(
    "participant",
    metadata,
    Column("subject", String(200), primary_key=True),
    Column("patient_id", String(32), unique=True),  # adapter id of the Patient, once known
    Column("research_subject_id", String(32)),
    Column("sex", String(20)),
    Column("birth_date", Date),
    Column("status", String(40), nullable=False),
    Column("enrolled_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
)

enrollment = Table(
    "enrollment",
    metadata,
    Column("system", String(300), primary_key=True),
    Column("value", String(300), primary_key=True),
    Column("subject", String(200), ForeignKey("participant.subject"), nullable=False),
    Column("created_at", Instant, nullable=False),
)

measurement = Table(
    "measurement",
    metadata,
    Column("resource_id", String(32), _owner(), primary_key=True),
    Column("subject", String(200), ForeignKey("participant.subject"), nullable=False),
    Column("analyte", String(64), nullable=False),
    Column("value", String(64), nullable=False),  # exact decimal, as a string
    Column("unit", String(64), nullable=False),
    Column("comparator", String(2)),
    Column("at", Instant, nullable=False),  # UTC
    Column("day_precision", Boolean, nullable=False),
    Column("status", String(40), nullable=False),
    Column("uln", String(64)),
    Column("code", String(100), nullable=False),
    Column("specimen_key", String(600)),  # identity key of the referenced Specimen
    # a random number drawn at each write of the row: the sum over a participant's rows
    # changes with any write of one of them (what views kept per participant cache by)
    Column("write_mark", BigInteger, nullable=False, server_default="0"),
    Index(None, "subject"),
    Index(None, "specimen_key"),
)

infusion = Table(
    "infusion",
    metadata,
    Column("resource_id", String(32), _owner(), primary_key=True),
    Column("subject", String(200), ForeignKey("participant.subject"), nullable=False),
    Column("at", Instant, nullable=False),
    Column("day_precision", Boolean, nullable=False),
    Column("status", String(40), nullable=False),
    Column("dose", String(64)),
    Column("dose_unit", String(64)),
    Index(None, "subject"),
)

endpoint_result = Table(
    "endpoint_result",
    metadata,
    Column("key", String(400), primary_key=True),  # the identifier value
    Column("kind", String(20), nullable=False),  # visit | participant
    Column("subject", String(200), nullable=False),
    Column("status", String(40), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("resource", Document, nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", Instant, nullable=False),
    Index(None, "subject"),
    Index(None, "last_updated"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("result_key", String(400), nullable=False),
    Column("version", Integer, nullable=False),
    Column("state", String(20), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Instant, nullable=False),
    Column("last_error", Text),
    Column("created_at", Instant, nullable=False),
    Column("delivered_at", Instant),
    #: until when a sender (host:pid/sender) holds the row: no other sender takes it before,
    #: unless that process is gone
    Column("lease_until", Instant),
    Column("lease_holder", String(200)),
    Index(None, "state", "next_attempt_at"),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Instant, nullable=False),
    Column("who", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("resources", Document, nullable=False),  # list of "Type/id" references
    Column("outcome", Text, nullable=False),
)

#: Secrets the adapter generates once and keeps (the pseudonym key); they never leave it.
adapter_secret = Table(
    "adapter_secret",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("value", String(200), nullable=False),
    Column("created_at", Instant, nullable=False),
)

#: Participants whose data changed and whose results are not recomputed yet: a bulk load
#: queues them with each chunk of lines (in the chunk's transaction) and recomputes each once
#: at the end of the load; a queue left by a load that stopped is taken up by the next one.
#: A participant whose recomputation failed keeps its row with the ``fault`` (and is claimed no
#: more) until its data change again: it blocks neither the others nor the next opening.
recompute_pending = Table(
    "recompute_pending",
    metadata,
    Column("subject", String(200), primary_key=True),
    Column("queued_at", Instant, nullable=False),
    Column("fault", Text),
    Column("failed_at", Instant),
)

#: SMART Backend Services clients: their public keys (a JWKS, or where to fetch it) and the
#: scopes they may be granted. A revoked client stays listed; its tokens stop working at once.
smart_client = Table(
    "smart_client",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("jwks", Document),
    Column("jwks_url", Text),
    Column("scopes", Text, nullable=False),
    Column("created_at", Instant, nullable=False),
    Column("revoked_at", Instant),
)

#: The ``jti`` of every client assertion accepted, kept until the assertion expires, so that
#: a replay is refused by every server process.
smart_assertion = Table(
    "smart_assertion",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("jti", String(255), primary_key=True),
    Column("expires_at", Instant, nullable=False, index=True),
)

#: Access tokens issued at the token endpoint, kept only as SHA-256 digests.
smart_access_token = Table(
    "smart_access_token",
    metadata,
    Column("digest", String(80), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("issued_at", Instant, nullable=False),
    Column("expires_at", Instant, nullable=False, index=True),
)

#: A Bulk Data export kicked off on an EHR and not loaded yet (one per EHR base URL): a pull
#: that stopped resumes from its polling URL.
pull_job = Table(
    "pull_job",
    metadata,
    Column("base_url", String(500), primary_key=True),
    Column("status_url", Text, nullable=False),
    Column("request", Text, nullable=False),
    Column("kicked_at", Instant, nullable=False),
    Column("manifest", Document),
)

#: The ``transactionTime`` of the last export loaded from an EHR: the next ``_since``.
pull_watermark = Table(
    "pull_watermark",
    metadata,
    Column("base_url", String(500), primary_key=True),
    Column("transaction_time", String(40), nullable=False),
    Column("pulled_at", Instant, nullable=False),
)

#: A Subscription the adapter holds on an EHR (``subscribe``): where it is, what it asks, the
#: hash of the secret its notifications carry, its state, the number of the last event whose
#: data is committed (with every event before it, received or caught up) and the EHR's instant
#: from which the next catch-up searches.
ehr_subscription = Table(
    "ehr_subscription",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("base_url", String(500), nullable=False),
    Column("remote_id", String(200)),
    Column("kind", String(10), nullable=False),  # topic | classic
    Column("criteria", Text, nullable=False),  # the topic canonical, or the search criteria
    Column("catch_up", Text, nullable=False),  # Type?params searched to catch up
    Column("content", String(20), nullable=False),  # empty | id-only | full-resource
    Column("secret_hash", String(80), nullable=False),
    Column("status", String(20), nullable=False),  # requested | active | error | off
    Column("heartbeat_seconds", Integer),
    Column("events_processed", BigInteger),
    Column("caught_up_at", String(40)),
    Column("created_at", Instant, nullable=False),
    Column("last_seen_at", Instant),
    Column("notifications", Integer, nullable=False),
    Column("catch_ups", Integer, nullable=False),
    Column("last_error", Text),
)

#: Bulk Data exports: what was asked, by whom, how far the job is, what it made. The job runs in
#: a server process (``owner``, alive while ``heartbeat_at`` moves); a job whose owner died is
#: taken up again by another.
bulk_export = Table(
    "bulk_export",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("status", String(20), nullable=False, index=True),
    Column("request", Text, nullable=False),
    Column("parameters", Document, nullable=False),
    Column("client", String(200), nullable=False),
    Column("created_at", Instant, nullable=False),
    Column("owner", String(200)),
    Column("heartbeat_at", Instant),
    Column("transaction_time", Instant),
    Column("finished_at", Instant),
    Column("expires_at", Instant),
    Column("polled_at", Instant),
    Column("done", Integer, nullable=False, default=0),
    Column("total", Integer, nullable=False, default=0),
    Column("output", Document),
    Column("error", Text),
)
