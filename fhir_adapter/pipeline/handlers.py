"""One handler per resource type: the enrollment gate, the mapping, what is persisted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from fhir_adapter.errors import ConflictError, ReferenceError_
from fhir_adapter.fhir import informational, rewrite_references
from fhir_adapter.mapping import Mapper, Unmapped
from fhir_adapter.pipeline.outcomes import EntryOutcome
from fhir_adapter.pipeline.requests import Request
from fhir_adapter.store import (
    ParticipantRow,
    SaveOutcome,
    Unit,
    content_hash,
    identifier_key,
    sender_id_key,
)
from fhir_adapter.trial.definitions import StudyDefinition

__all__ = ["HANDLERS", "OLDER", "Context", "handle", "older_than_kept", "representation"]


@dataclass(slots=True)
class Context:
    """What a handler may use: the unit of work, the sender, the Bundle's ids, the mapper."""

    unit: Unit
    sender: str
    file: str | None
    mapper: Mapper
    study: StudyDefinition
    targets: dict[str, str] = field(default_factory=dict)
    bundle_keys: dict[str, str] = field(default_factory=dict)
    stable: dict[str, str] = field(default_factory=dict)
    _local: set[str] | None = None  # the values of ``targets``, kept until they change

    def digest(self, request: Request) -> str:
        """The content hash: references to Bundle entries by those entries' identity."""
        assert request.resource is not None
        if not self.stable:  # nothing to rewrite (an NDJSON line, a lone resource)
            return content_hash(request.resource)
        return content_hash(rewrite_references(request.resource, self.stable))

    @property
    def local_keys(self) -> set[str]:
        if self._local is None:
            self._local = set(self.targets.values())
        return self._local

    def retarget(self, old: str, new: str) -> None:
        """Another writer created this entry's resource first (a race lost on the unique key):
        references to the entry now name that resource, not the id planned for it."""
        for mapping in (self.targets, self.bundle_keys):
            for name, key in mapping.items():
                if key == old:
                    mapping[name] = new
        self._local = None


Handler = Callable[[Context, Request, dict[str, Any]], EntryOutcome]


def not_kept(request: Request, reason: str, status: int = 200, *,
             detail: str = "") -> EntryOutcome:
    """Answered, not kept: ``reason`` is what summaries count, ``detail`` adds to the entry's
    OperationOutcome what only this entry has."""
    text = f"not kept: {reason}" + (f" ({detail})" if detail else "")
    return EntryOutcome(request.index, request.resource_type, "not-kept", status,
                        reason=reason, outcome=informational(text))


def save(ctx: Context, request: Request, resolved: dict[str, Any], subject: str | None,
         *, extra_keys: tuple[str, ...] = ()) -> tuple[EntryOutcome, SaveOutcome]:
    """Keep the resource as received; a new version only when its content changed."""
    assert request.resource is not None
    planned = request.key
    saved = ctx.unit.save(
        request.resource_type, [*request.keys, *extra_keys], request.resource,
        sender=ctx.sender, content_hash=ctx.digest(request), new_id=request.id,
        status=request.resource.get("status"),
    )
    request.id = saved.id
    if request.key != planned:
        ctx.retarget(planned, request.key)
    state = "created" if saved.created else "updated" if saved.changed else "unchanged"
    entry = EntryOutcome(
        request.index, request.resource_type, state, 201 if saved.created else 200,
        id=saved.id, version=saved.version, last_modified=saved.last_updated,
        resource=representation(resolved, saved.id, saved.version, saved.last_updated),
        subjects={subject} if subject and saved.changed else set(),
    )
    return entry, saved


def representation(resolved: dict[str, Any], rid: str, version: int,
                   last_updated: datetime | None) -> dict[str, Any]:
    """The resource as the server holds it (FHIR http.html create/update): the adapter id,
    ``meta.versionId`` and ``meta.lastUpdated``, references rewritten to adapter ids."""
    meta = dict(resolved.get("meta") or {})
    meta["versionId"] = str(version)
    if last_updated is not None:
        meta["lastUpdated"] = last_updated.isoformat()
    rest = {k: v for k, v in resolved.items() if k not in ("resourceType", "id", "meta")}
    return {"resourceType": resolved.get("resourceType"), "id": rid, "meta": meta, **rest}


def patient_key(ctx: Context, reference: dict[str, Any] | None) -> str | None:
    """The adapter id of the Patient a (rewritten) Reference names, if it is known."""
    if not isinstance(reference, dict):
        return None
    text = reference.get("reference")
    if isinstance(text, str) and text:
        rtype, _, rid = "/".join(text.rstrip("/").split("/")[-2:]).partition("/")
        if rtype != "Patient":
            return None
        if f"Patient/{rid}" in ctx.local_keys:
            return rid
        found = ctx.unit.find([sender_id_key("Patient", ctx.sender, rid)]) or \
            ctx.unit.get("Patient", rid)
        return found.id if found else None
    ident = reference.get("identifier")
    if isinstance(ident, dict) and ident.get("value"):
        key = identifier_key("Patient", str(ident.get("system") or ""), str(ident["value"]))
        if key in ctx.bundle_keys:
            return ctx.bundle_keys[key].split("/", 1)[1]
        found = ctx.unit.find([key])
        return found.id if found else None
    return None


def gate(ctx: Context, request: Request, reference: Any) -> ParticipantRow | str:
    """The participant a resource is about, or the reason it is not kept."""
    pid = patient_key(ctx, reference)
    row = ctx.unit.participant_for_patient(pid) if pid else None
    if row is None:
        return "patient not enrolled"
    if row.status in ctx.study.stopped_statuses:
        return f"participant {row.status}"
    return row


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
    entry, saved = save(ctx, request, resolved, subject)
    ctx.unit.upsert_participant(subject, status=status, patient_id=pid,
                                research_subject_id=saved.id)
    if pid is None and facts.individual_identifier is not None:
        system, value = facts.individual_identifier
        ctx.unit.enroll(system or "", value, subject, status=status)
    entry.subjects.add(subject)
    return entry


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
    entry, saved = save(ctx, request, resolved, row.subject)
    ctx.unit.upsert_participant(row.subject, status=row.status, patient_id=saved.id,
                                sex=facts.sex, birth_date=facts.birth_date)
    return entry


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


def observation(ctx: Context, request: Request, resolved: dict[str, Any]) -> EntryOutcome:
    row = gate(ctx, request, resolved.get("subject"))
    if isinstance(row, str):
        return not_kept(request, row)
    specimen_key, at = _specimen(ctx, resolved.get("specimen"))
    mapped = ctx.mapper.observation(resolved, source=request.key, specimen_time=at)
    if isinstance(mapped, Unmapped):
        if mapped.analyte is not None and request.existing is not None:
            return _withdrawn(ctx, request, resolved, row.subject)
        return not_kept(request, "code of no analyte" if mapped.analyte is None else mapped.reason)
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


def out_of_scope(ctx: Context, request: Request, resolved: dict[str, Any]) -> EntryOutcome:
    return not_kept(request, "type out of scope")


HANDLERS: dict[str, Handler] = {
    "ResearchStudy": research_study,
    "ResearchSubject": research_subject,
    "Patient": patient,
    "Specimen": specimen,
    "MedicationAdministration": administration,
    "Observation": observation,
}


def handle(ctx: Context, request: Request, resolved: dict[str, Any]) -> EntryOutcome:
    if request.existing is not None and request.resource is not None:
        older = older_than_kept(request.resource, request.existing.current)
        if older is not None:
            return not_kept(request, OLDER, detail=older)
    return HANDLERS.get(request.resource_type, out_of_scope)(ctx, request, resolved)


#: What dates a version of a resource, strongest first: when the sender last changed it, and
#: for an Observation when this version of the result was made available (a correction is
#: issued later than what it corrects).
_VERSION_TIMES = (("meta", "lastUpdated"), ("issued",))


OLDER = "older than the kept version"


def older_than_kept(incoming: dict[str, Any], kept: dict[str, Any]) -> str | None:
    """Why ``incoming`` is an older version than the one kept, or None when it is not.

    The first of ``meta.lastUpdated`` and ``issued`` that both carry decides; when neither
    does, the version received later is the newer one. So an EHR that sends an old export
    again (the original of a value corrected since) cannot undo the correction."""
    for path in _VERSION_TIMES:
        new, old = _instant(incoming, path), _instant(kept, path)
        if new is None or old is None:
            continue
        if new[0] < old[0]:
            name = ".".join(path)
            return f"{name} {new[1]} is before {old[1]}, that of the kept version"
        return None
    return None


def _instant(resource: dict[str, Any], path: tuple[str, ...]) -> tuple[datetime, str] | None:
    value: Any = resource
    for step in path:
        value = value.get(step) if isinstance(value, dict) else None
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment, value) if moment.tzinfo is not None else None
