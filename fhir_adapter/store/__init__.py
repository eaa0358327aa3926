"""Persistence (SQLAlchemy): resources as received, the trial model, results, outbox, audit."""

from __future__ import annotations

from fhir_adapter.store.database import Store, Unit
from fhir_adapter.store.keys import (
    content_hash,
    describe_key,
    identifier_key,
    identity_keys,
    is_identifier_key,
    names_identifier,
    sender_id_key,
)
from fhir_adapter.store.rows import (
    AuditRow,
    OutboxRow,
    ParticipantRow,
    ResultRow,
    SaveOutcome,
    StoredResource,
)

__all__ = [
    "AuditRow",
    "OutboxRow",
    "ParticipantRow",
    "ResultRow",
    "SaveOutcome",
    "Store",
    "StoredResource",
    "Unit",
    "content_hash",
    "describe_key",
    "identifier_key",
    "identity_keys",
    "is_identifier_key",
    "names_identifier",
    "sender_id_key",
]
