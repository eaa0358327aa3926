"""MedicationAdministration: an infusion of the study product is kept (it sets Day 0)."""

from __future__ import annotations

from typing import Any

from fhir_adapter.pipeline.handlers.base import Context, gate, not_kept, save
from fhir_adapter.pipeline.outcomes import EntryOutcome
from fhir_adapter.pipeline.requests import Request

__all__ = ["administration"]


def administration(ctx: Context, request: Request, resolved: dict[str, Any]) -> EntryOutcome:
    row = gate(ctx, request, resolved.get("subject"))
    if isinstance(row, str):
        return not_kept(request, row)
    infusion = ctx.mapper.administration(resolved, source=request.key)
    if infusion is None:
        return not_kept(request, "not the study product")
    entry, saved = save(ctx, request, resolved, row.subject)
    if saved.changed:
        ctx.unit.put_infusion(saved.id, row.subject, infusion)
    return entry
