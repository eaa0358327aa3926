"""Validation as the pipeline does it: which Patients are enrolled, and ``$validate``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fhir_adapter.errors import Issue, UnusableInput, Where
from fhir_adapter.fhir import parse_conditional
from fhir_adapter.mapping import Mapper
from fhir_adapter.pipeline.requests import Request
from fhir_adapter.settings import Settings
from fhir_adapter.store import Unit, identity_keys
from fhir_adapter.terminology import Terminology
from fhir_adapter.validation import Validator, to_operation_outcome

__all__ = [
    "document_issues",
    "enrolled_patients",
    "check_document",
    "make_validator",
    "validation_outcome",
]

Pair = tuple[int | None, Issue]


def load_mapper(settings: Settings) -> Mapper:
    """The study, the analyte catalogue and the site code maps the settings name."""
    terms = Terminology.from_settings(settings)
    return Mapper(terms.catalogue, terms.study, terms.site_maps)


def offline_validator(settings: Settings) -> Validator:
    """The validator of ``fhir-adapter validate``: the same rules, no database opened."""
    return Validator.over(Terminology.from_settings(settings), settings)


def make_validator(mapper: Mapper, settings: Settings | None = None) -> Validator:
    """The profile validator over the mapper's terminology (site codes are analytes too),
    with the site's choice for implausible values."""
    return Validator.over(mapper.terminology, settings)


# -- which Patients are of an enrolled participant (the trial-patient profile applies) ----------
def enrolled_patients(unit: Unit, requests: Sequence[Request], mapper: Mapper,
                      sender: str | None) -> set[int]:
    """Indices of the Patient requests about an enrolled participant: one already linked to
    the stored Patient, enrolled by identifier, or enrolled by a ResearchSubject beside it."""
    subjects = [r.resource for r in requests
                if r.resource_type == "ResearchSubject" and r.resource is not None]
    found: set[int] = set()
    for request in requests:
        if request.resource_type != "Patient" or request.resource is None:
            continue
        if _stored_participant(unit, request, sender) or _enrolled_beside(
                request, subjects, mapper):
            found.add(request.index)
    return found


def _identifiers(patient: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(i.get("system") or ""), str(i["value"])) for i in patient.get("identifier") or []
            if isinstance(i, dict) and isinstance(i.get("value"), str) and i["value"]]


def _stored_participant(unit: Unit, request: Request, sender: str | None) -> bool:
    assert request.resource is not None
    if unit.enrolled_subject(_identifiers(request.resource)) is not None:
        return True
    candidates = [request.id] if request.id else []
    if sender is not None:
        stored = unit.find(identity_keys(request.resource, sender=sender,
                                         full_url=request.full_url))
        candidates += [stored.id] if stored else []
    return any(unit.participant_for_patient(pid) is not None for pid in candidates)


def _enrolled_beside(request: Request, subjects: list[dict[str, Any]], mapper: Mapper) -> bool:
    """A ResearchSubject of this study, in an enrolled status, naming this Patient."""
    assert request.resource is not None
    names = {n for n in (request.full_url,
                         f"Patient/{request.resource.get('id')}" if request.resource.get("id")
                         else None) if n}
    own = {(s or None, v) for s, v in _identifiers(request.resource)}
    statuses = mapper.study.enrolled_statuses
    for subject in subjects:
        facts = mapper.research_subject(subject)
        if facts.status not in statuses:
            continue
        if facts.individual in names or facts.individual_identifier in own:
            return True
        if _names_by_identifier(facts.individual, own):
            return True
    return False


def _names_by_identifier(reference: str | None, own: set[tuple[str | None, str]]) -> bool:
    """Whether a conditional reference ``Patient?identifier=[s|]v`` names one of ``own``."""
    try:
        query = parse_conditional(reference) if reference else None
    except UnusableInput:
        return False
    if query is None or query.identifier is None:
        return False
    system, value = query.identifier
    return (system, value) in own if system else any(v == value for _, v in own)


# -- $validate ---------------------------------------------------------------------------------
def document_issues(validator: Validator, document: dict[str, Any], *,
                    profile: str | None = None, enrolled: set[int] | bool = False) -> list[Pair]:
    """Every problem of a resource or of a Bundle (each entry; its index with each issue).
    ``enrolled``: for a resource, whether it is the Patient of a participant; for a Bundle,
    the indices of such Patient entries (their issues include the trial-patient profile)."""
    return validator.check(document, profile=profile, enrolled=enrolled)


def validation_outcome(validator: Validator, document: Any, *, resource_type: str | None,
                       profile: str | None, enrolled: set[int] | bool = False) -> dict[str, Any]:
    """The OperationOutcome of ``$validate`` (one ``information`` issue "valid" when clean)."""
    check_document(document, resource_type)
    pairs = document_issues(validator, document, profile=profile, enrolled=enrolled)
    return to_operation_outcome([issue for _, issue in pairs])


def check_document(document: Any, resource_type: str | None) -> None:
    """Refuse what is not FHIR at all (UnusableInput): not an object, no resourceType."""
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise UnusableInput("not FHIR: a JSON object with a resourceType was expected",
                            where=Where(element="resourceType"))
    if resource_type is not None and document["resourceType"] != resource_type:
        raise UnusableInput(
            f"the body is a {document['resourceType']}, not a {resource_type}",
            where=Where(element="resourceType"))
