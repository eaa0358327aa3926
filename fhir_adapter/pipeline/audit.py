"""The audit trail: one row per write call (who, when, which resources, what came of it)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from fhir_adapter.errors import AdapterError
from fhir_adapter.pipeline.outcomes import EntryOutcome
from fhir_adapter.store import Store, Unit

__all__ = [
    "failure_text", "record", "record_failure", "records", "success_text", "touched", "write",
]

_REASONS = {200: "200 OK", 201: "201 Created"}
_MAX_TEXT = 2000


def touched(entries: Sequence[EntryOutcome]) -> list[str]:
    """The ``Type/id`` keys of the resources the call created, changed or confirmed."""
    return [f"{e.resource_type}/{e.id}" for e in entries if e.location is not None]


def success_text(status: int, entries: Sequence[EntryOutcome]) -> str:
    """E.g. ``200 OK: 3 created, 1 not kept (patient not enrolled)``."""
    states = Counter(e.state for e in entries)
    parts = [f"{states[s]} {s}" for s in ("created", "updated", "unchanged") if states[s]]
    reasons = Counter(e.reason or "not kept" for e in entries if e.state == "not-kept")
    if reasons:
        why = "; ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
        parts.append(f"{sum(reasons.values())} not kept ({why})")
    failed = [e for e in entries if e.state == "error"]
    if failed:
        first = failed[0].error
        detail = f" ({failure_text(first)})" if first is not None else ""
        parts.append(f"{len(failed)} error{'s' if len(failed) > 1 else ''}{detail}")
    text = _REASONS.get(status, str(status))
    return _short(f"{text}: {', '.join(parts)}" if parts else text)


def failure_text(error: AdapterError) -> str:
    """The HTTP status of the refusal and its first diagnostics, with where it was found."""
    return _short(f"{error.http_status} {error.line()}")


def write(unit: Unit, who: str, action: str, entries: Sequence[EntryOutcome],
          status: int = 200, refused: Sequence[dict[str, Any]] = ()) -> None:
    """The row of a successful call, inside the unit of work that did the writing;
    ``refused``: what its refused entries were about (``refusals.describe``)."""
    unit.record_audit(who, action, [*touched(entries), *refused],
                      success_text(status, entries))


def record(store: Store, who: str, action: str, entries: Sequence[EntryOutcome],
           status: int = 200, refused: Sequence[dict[str, Any]] = ()) -> None:
    """The row of a call whose entries were written in transactions of their own."""
    with store.transaction() as unit:
        write(unit, who, action, entries, status, refused)


def record_failure(store: Store, who: str, action: str, error: AdapterError,
                   refused: Sequence[dict[str, Any]] = ()) -> None:
    """The row of a refused call, in its own transaction after the rollback. A database that
    cannot take it does not hide the refusal itself (which the caller raises next)."""
    try:
        with store.transaction() as unit:
            unit.record_audit(who, action, list(refused), failure_text(error))
    except AdapterError:
        pass


def records(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` rows, newest first: sender, at, action, resources (``Type/id``),
    refused (what the refused entries of participants were about), outcome."""
    with store.read() as unit:
        rows = unit.audit_rows(limit=limit)
    return [{"sender": r.who, "at": r.at, "action": r.action,
             "resources": [k for k in r.resources if isinstance(k, str)],
             "refused": [k for k in r.resources if isinstance(k, dict)],
             "outcome": r.outcome} for r in rows]


def _short(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"
