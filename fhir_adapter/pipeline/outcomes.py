"""What processing answered: per entry, per Bundle, and the load summary of an ingest."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import Any

from fhir_adapter.errors import AdapterError
from fhir_adapter.fhir import error_outcome

__all__ = ["BundleOutcome", "EntryOutcome", "LoadSummary", "TypeCounts"]



def _status_line(status: int) -> str:
    """``Bundle.entry.response.status``: the code and its reason phrase, as in ``201 Created``."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


@dataclass(slots=True)
class EntryOutcome:
    """The answer to one resource: ``state`` is created, updated, unchanged, not-kept or error."""

    index: int
    resource_type: str
    state: str
    status: int
    id: str | None = None
    version: int | None = None
    last_modified: datetime | None = None
    resource: dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None
    reason: str | None = None  # why it was not kept
    error: AdapterError | None = None
    subjects: set[str] = field(default_factory=set)

    @property
    def location(self) -> str | None:
        if self.id is None or self.version is None:
            return None
        return f"{self.resource_type}/{self.id}/_history/{self.version}"

    @property
    def etag(self) -> str | None:
        return None if self.version is None else f'W/"{self.version}"'

    def response_entry(self, prefer: str = "representation") -> dict[str, Any]:
        """The ``Bundle.entry`` of a transaction-response or batch-response."""
        response: dict[str, Any] = {"status": _status_line(self.status)}
        if self.location:
            response["location"] = self.location
            response["etag"] = self.etag
        if self.last_modified is not None:
            response["lastModified"] = self.last_modified.isoformat()
        outcome = self.outcome
        if outcome is None and self.error is not None:
            outcome = error_outcome(self.error)
        if outcome is not None and prefer != "minimal":
            response["outcome"] = outcome
        entry: dict[str, Any] = {"response": response}
        if prefer == "representation" and self.resource is not None:
            entry["resource"] = self.resource
        return entry


@dataclass(slots=True)
class BundleOutcome:
    """The answer to a Bundle: one EntryOutcome per entry, in request order."""

    bundle_type: str
    entries: list[EntryOutcome]
    prefer: str = "representation"

    @property
    def response(self) -> dict[str, Any]:
        kind = "transaction-response" if self.bundle_type == "transaction" else "batch-response"
        return {
            "resourceType": "Bundle",
            "type": kind,
            "entry": [e.response_entry(self.prefer) for e in self.entries],
        }

    @property
    def subjects(self) -> set[str]:
        return set().union(*(e.subjects for e in self.entries)) if self.entries else set()


@dataclass(slots=True)
class TypeCounts:
    read: int = 0
    kept: int = 0
    replaced: int = 0
    unchanged: int = 0
    errors: int = 0
    not_kept: Counter[str] = field(default_factory=Counter)


#: The row of the load summary that counts NDJSON lines that could not be read as a resource.
UNREADABLE = "(unreadable line)"


@dataclass(slots=True)
class LoadSummary:
    """Counts per resource type of what an ingest read, kept, replaced, left and refused."""

    files: int = 0
    by_type: dict[str, TypeCounts] = field(default_factory=dict)
    errors: list[AdapterError] = field(default_factory=list)
    #: Files found in a folder that are not FHIR at all (e.g. a README's JSON): left, with why.
    skipped: list[AdapterError] = field(default_factory=list)

    def add(self, entry: EntryOutcome) -> None:
        counts = self.by_type.setdefault(entry.resource_type or "(unknown)", TypeCounts())
        counts.read += 1
        if entry.state == "created":
            counts.kept += 1
        elif entry.state == "updated":
            counts.replaced += 1
        elif entry.state == "unchanged":
            counts.unchanged += 1
        elif entry.state == "not-kept":
            counts.not_kept[entry.reason or "not kept"] += 1
        else:
            counts.errors += 1

    def add_error(self, error: AdapterError, resource_types: list[str] | None = None) -> None:
        """An error that refused input; ``resource_types`` of the entries it took with it (the
        failing entry counts as an error, the others as not kept: the Bundle was refused)."""
        self.errors.append(error)
        for index, rtype in enumerate(resource_types or []):
            counts = self.by_type.setdefault(rtype, TypeCounts())
            counts.read += 1
            if index == error.where.entry:
                counts.errors += 1
            else:
                counts.not_kept["transaction refused"] += 1

    def add_unreadable(self, error: AdapterError) -> None:
        """A line of an NDJSON file that is not a FHIR resource: an error, the rest goes on."""
        self.errors.append(error)
        counts = self.by_type.setdefault(UNREADABLE, TypeCounts())
        counts.read += 1
        counts.errors += 1

    def total(self, attribute: str) -> int:
        return sum(int(getattr(c, attribute)) for c in self.by_type.values())

    def not_kept(self, resource_type: str | None = None) -> Counter[str]:
        total: Counter[str] = Counter()
        for rtype, counts in self.by_type.items():
            if resource_type is None or rtype == resource_type:
                total.update(counts.not_kept)
        return total

    @property
    def exit_code(self) -> int:
        return max((e.exit_code for e in self.errors), default=0)
