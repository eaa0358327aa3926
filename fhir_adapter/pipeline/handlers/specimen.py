"""Specimen: its collection time is the time of the Observations that wait for it."""

from __future__ import annotations

from typing import Any

from fhir_adapter.mapping import Unmapped
from fhir_adapter.pipeline.handlers.base import Context, gate, not_kept, save
from fhir_adapter.pipeline.outcomes import EntryOutcome
from fhir_adapter.pipeline.requests import Request

__all__ = ["specimen"]


def specimen(ctx: Context, request: Request, resolved: dict[str, Any]) -> EntryOutcome:
    row = gate(ctx, request, resolved.get("subject"))
    if isinstance(row, str):
        return not_kept(request, row)
    entry, saved = save(ctx, request, resolved, row.subject)
    if saved.changed:
        at = ctx.mapper.specimen_time(resolved)
        waiting = ctx.unit.measurements_for_specimen([*request.keys, f"Specimen/{saved.id}"])
        for obs_id, subject, key in waiting:
            stored = ctx.unit.get_by_id(obs_id)
            if stored is None:
                continue
            mapped = ctx.mapper.observation(stored.current, source=stored.key, specimen_time=at)
            if not isinstance(mapped, Unmapped):
                ctx.unit.put_measurement(obs_id, subject, mapped, specimen_key=key)
                entry.subjects.add(subject)
    return entry
