"""ResearchStudy and ResearchSubject: this study or not, enrollment, one patient per participant."""

from __future__ import annotations

from typing import Any

from fhir_adapter.errors import ConflictError, ReferenceError_
from fhir_adapter.fhir import informational
from fhir_adapter.mapping import SubjectFacts, check_subject_code, patient_identifiers
from fhir_adapter.pipeline.handlers.base import Context, not_kept, patient_key, save
from fhir_adapter.pipeline.outcomes import EntryOutcome
from fhir_adapter.pipeline.requests import Request
from fhir_adapter.store import ParticipantRow

__all__ = ["research_study", "research_subject"]


def research_study(ctx: Context, request: Request, resolved: dict[str, Any]) -> EntryOutcome:
    if ctx.mapper.is_this_study(resolved):
        return EntryOutcome(request.index, "ResearchStudy", "unchanged", 200,
                            outcome=informational("this study: nothing to change"))
    return not_kept(request, "another study")


def research_subject(ctx: Context, request: Request, resolved: dict[str, Any]) -> EntryOutcome:
    assert request.resource is not None
    facts = ctx.mapper.research_subject(request.resource)  # the study as the sender named it
    individual = ctx.mapper.research_subject(resolved).individual  # the Patient as resolved
    if not facts.is_study:
        return not_kept(request, "another study")
    status = facts.status or ""
    enrolled = status in ctx.study.enrolled_statuses | ctx.study.stopped_statuses
    pid = patient_key(ctx, {"reference": individual} if individual else None)
    current = ctx.unit.participant_for_patient(pid) if pid else None
    if current is None and facts.subject_code:
        current = ctx.unit.participant(facts.subject_code)
    if not enrolled and current is None:
        return not_kept(request, f"not enrolled (status {status or 'missing'})")
    if pid is None and facts.individual_identifier is None:
        raise ReferenceError_(
            f"ResearchSubject.individual {facts.individual or '(missing)'} is not a known Patient",
            where=request.where(ctx.file, "ResearchSubject.individual"),
        )
    _one_participant(ctx, request, current, facts.subject_code, pid)
    subject = (current.subject if current else None) or facts.subject_code or \
        ctx.unit.next_subject_code(ctx.study.subject_prefix)
    check_subject_code(subject, _identifiers(ctx, pid, facts),
                       where=request.where(ctx.file, "ResearchSubject.identifier"))
    entry, saved = save(ctx, request, resolved, subject)
    ctx.unit.upsert_participant(subject, status=status, patient_id=pid,
                                research_subject_id=saved.id)
    if pid is None and facts.individual_identifier is not None:
        system, value = facts.individual_identifier
        ctx.unit.enroll(system or "", value, subject, status=status)
    entry.subjects.add(subject)
    return entry


def _identifiers(ctx: Context, pid: str | None,
                 facts: SubjectFacts) -> list[tuple[str | None, str]]:
    """The identifiers of the Patient a ResearchSubject names: of its logical reference, of
    the Patient entry written with it (in this batch or export), or of the stored Patient."""
    found = [facts.individual_identifier] if facts.individual_identifier else []
    if pid is not None:
        resource = ctx.peers.get(f"Patient/{pid}")
        if resource is None:
            stored = ctx.unit.get("Patient", pid)
            resource = stored.current if stored is not None else None
        if resource is not None:
            found += patient_identifiers(resource)
    return found


def _one_participant(ctx: Context, request: Request, current: ParticipantRow | None,
                     code: str | None, pid: str | None) -> None:
    """One patient is one participant: a second subject code for an enrolled patient, or a
    subject code already given to another patient, is a conflict."""
    if current is None:
        return
    if code and current.subject != code:
        raise ConflictError(
            f"the Patient is already participant {current.subject}; this ResearchSubject "
            f"names {code}", where=request.where(ctx.file, "ResearchSubject.identifier"))
    if pid and current.patient_id and current.patient_id != pid:
        raise ConflictError(
            f"subject code {current.subject} is already another Patient's",
            where=request.where(ctx.file, "ResearchSubject.individual"))
