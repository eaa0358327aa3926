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
from fhir_adapter.store.outbox import OutboxRow
from fhir_adapter.store.participants import ParticipantRow
from fhir_adapter.store.resources import SaveOutcome, StoredResource
from fhir_adapter.store.results import AuditRow, ResultRow

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
