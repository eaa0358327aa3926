"""Observation: a value of an analyte kept as a measurement, waiting for its Specimen if any."""

from __future__ import annotations

from datetime import date
from typing import Any

from fhir_adapter.mapping import Unmapped
from fhir_adapter.pipeline.handlers.base import Context, gate, not_kept, save
from fhir_adapter.pipeline.outcomes import EntryOutcome
from fhir_adapter.pipeline.requests import Request
from fhir_adapter.store import identifier_key, sender_id_key

__all__ = ["observation"]


def observation(ctx: Context, request: Request, resolved: dict[str, Any]) -> EntryOutcome:
    row = gate(ctx, request, resolved.get("subject"))
    if isinstance(row, str):
        return not_kept(request, row)
    specimen_key, at = _specimen(ctx, resolved.get("specimen"))
    mapped = ctx.mapper.observation(resolved, source=request.key, specimen_time=at)
    if isinstance(mapped, Unmapped):
        if mapped.analyte is not None and request.existing is not None:
            return _withdrawn(ctx, request, resolved, row.subject)
        if mapped.analyte is None:  # counted under one reason; the entry names its codes
            return not_kept(request, "code of no analyte",
                            detail=", ".join(mapped.codes) or "no code")
        return not_kept(request, mapped.reason)
    entry, saved = save(ctx, request, resolved, row.subject)
    if saved.changed:
        ctx.unit.put_measurement(saved.id, row.subject, mapped, specimen_key=specimen_key,
                                 replace=not saved.created)
    return entry


def _withdrawn(ctx: Context, request: Request, resolved: dict[str, Any],
               subject: str) -> EntryOutcome:
    """A stored analyte Observation updated to entered-in-error or cancelled without a value:
    the new version is kept and the value it replaces is withdrawn (recomputed without it)."""
    entry, saved = save(ctx, request, resolved, subject)
    if saved.changed:
        status = str(resolved.get("status") or "entered-in-error")
        owner = ctx.unit.withdraw_measurement(saved.id, status)
        entry.subjects.add(owner or subject)
    return entry


def _specimen(ctx: Context, reference: Any) -> tuple[str | None, date | None]:
    """The key under which the Observation waits for its Specimen, and its collection time."""
    if not isinstance(reference, dict):
        return None, None
    text = reference.get("reference")
    key: str | None = None
    if isinstance(text, str) and text.startswith("Specimen/"):
        rid = text.split("/", 1)[1]
        key = text if text in ctx.local_keys else sender_id_key("Specimen", ctx.sender, rid)
    elif isinstance(reference.get("identifier"), dict):
        ident = reference["identifier"]
        key = identifier_key("Specimen", str(ident.get("system") or ""), str(ident.get("value")))
    if key is None:
        return None, None
    stored = ctx.unit.find([key]) if not key.startswith("Specimen/") else \
        ctx.unit.get_by_id(key.split("/", 1)[1])
    if stored is None:
        return key, None
    return f"Specimen/{stored.id}", ctx.mapper.specimen_time(stored.current)
