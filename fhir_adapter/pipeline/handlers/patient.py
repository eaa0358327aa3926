"""Patient: kept only for a participant (enrolled before it, or beside it), never when stopped."""

from __future__ import annotations

from typing import Any

from fhir_adapter.mapping import check_subject_code
from fhir_adapter.pipeline.handlers.base import Context, not_kept, save
from fhir_adapter.pipeline.outcomes import EntryOutcome
from fhir_adapter.pipeline.requests import Request

__all__ = ["patient"]


def patient(ctx: Context, request: Request, resolved: dict[str, Any]) -> EntryOutcome:
    facts = ctx.mapper.patient(resolved)
    row = ctx.unit.participant_for_patient(request.id)
    if row is None:
        subject = ctx.unit.enrolled_subject((s or "", v) for s, v in facts.identifiers)
        row = ctx.unit.participant(subject) if subject else None
    if row is None:
        return not_kept(request, "patient not enrolled")
    if row.status in ctx.study.stopped_statuses:
        return not_kept(request, f"participant {row.status}")
    check_subject_code(row.subject, facts.identifiers,
                       where=request.where(ctx.file, "Patient.identifier"))
    entry, saved = save(ctx, request, resolved, row.subject)
    ctx.unit.upsert_participant(row.subject, status=row.status, patient_id=saved.id,
                                sex=facts.sex, birth_date=facts.birth_date)
    return entry
