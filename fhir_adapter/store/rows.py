"""The rows the repositories hand out: plain values, read once, never bound to a connection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fhir_adapter.trial.model import Participant

__all__ = ["AuditRow", "OutboxRow", "ParticipantRow", "ResultRow", "SaveOutcome", "StoredResource"]


@dataclass(frozen=True, slots=True)
class StoredResource:
    id: str
    type: str
    version: int
    sender: str
    status: str | None
    content_hash: str
    current: dict[str, Any]
    received_at: datetime
    last_updated: datetime

    @property
    def key(self) -> str:
        """The internal key ``Type/<adapter id>``."""
        return f"{self.type}/{self.id}"


@dataclass(frozen=True, slots=True)
class SaveOutcome:
    """What saving did: created (201), updated (new version), or nothing (same content)."""

    id: str
    type: str
    version: int
    created: bool
    changed: bool
    previous: StoredResource | None = None
    last_updated: datetime | None = None  # of the version now current

    @property
    def key(self) -> str:
        return f"{self.type}/{self.id}"


@dataclass(frozen=True, slots=True)
class ParticipantRow:
    subject: str
    status: str
    patient_id: str | None
    research_subject_id: str | None
    sex: str | None
    birth_date: date | None
    enrolled_at: datetime

    def as_participant(self) -> Participant:
        return Participant(self.subject, self.sex, self.birth_date)


@dataclass(frozen=True, slots=True)
class ResultRow:
    key: str
    kind: str  # visit | participant
    subject: str
    status: str
    content_hash: str
    resource: dict[str, Any]
    version: int
    last_updated: datetime


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: datetime
    who: str
    action: str
    resources: list[Any]  # "Type/id" keys; a dict describes a refused entry
    outcome: str


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    result_key: str
    version: int
    state: str  # pending | delivered | failed
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    #: until when a sender holds it (a claim not settled yet), or None
    lease_until: datetime | None = None
