"""ResearchSubject and ResearchStudy: is it this study, which status, which subject code."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir_adapter.errors import InvalidResource, Issue, Where
from fhir_adapter.fhir.references import parse_conditional
from fhir_adapter.mapping.facts import SubjectFacts
from fhir_adapter.trial.definitions import StudyDefinition

__all__ = ["check_subject_code", "is_study_reference", "is_this_study", "patient_identifiers",
           "read_subject"]


def read_subject(resource: dict[str, Any], study: StudyDefinition) -> SubjectFacts:
    """The facts of a ResearchSubject; the subject code is its first identifier value."""
    reference = _object(resource.get("study"))
    individual = _object(resource.get("individual"))
    code = next(
        (
            i["value"]
            for i in resource.get("identifier") or []
            if isinstance(i, dict) and isinstance(i.get("value"), str) and i["value"]
        ),
        None,
    )
    logical = individual.get("identifier")
    return SubjectFacts(
        is_study=is_study_reference(reference, study),
        status=resource.get("status"),
        subject_code=code,
        individual=individual.get("reference"),
        individual_identifier=(
            (logical.get("system"), logical["value"])
            if isinstance(logical, dict) and logical.get("value")
            else None
        ),
        study_reference=reference.get("reference"),
    )


def patient_identifiers(resource: dict[str, Any]) -> tuple[tuple[str | None, str], ...]:
    """(system or None, value) of each identifier of a Patient that has a value."""
    return tuple(
        (i.get("system") or None, i["value"])
        for i in resource.get("identifier") or []
        if isinstance(i, dict) and isinstance(i.get("value"), str) and i["value"]
    )


def check_subject_code(code: str, identifiers: Iterable[tuple[str | None, str]], *,
                       where: Where) -> None:
    """Refuse (422) a subject code that is one of the Patient's own identifier values, an MRN
    used as the subject code: compared without case and surrounding blanks.

    The subject code is the one name of a participant that leaves the hospital: every result,
    export, push, dataset and SDTM row carries it (RESULTS.md: nothing that identifies a person
    at the hospital leaves). Refused rather than warned about, because a warning comes after
    the code was published, and a published code cannot be called back from the research
    servers that pulled it; the sender can always give a code of the trial instead."""
    wanted = code.strip().casefold()
    for system, value in identifiers:
        if value.strip().casefold() == wanted:
            named = f"{system}|{value}" if system else value
            text = (f"subject code {code!r} is the Patient's own identifier {named}: the subject "
                    "code is published with every result, so it must not be an MRN or another "
                    "identifier of the patient; give the participant a code of the trial")
            raise InvalidResource(text, where=where,
                                  issues=[Issue("error", "business-rule", where.element, text)])


def is_this_study(resource: dict[str, Any], study: StudyDefinition) -> bool:
    """Whether a ResearchStudy resource is this study (by its identifier)."""
    return any(
        isinstance(i, dict) and _is_study_identifier(i.get("system"), i.get("value"), study)
        for i in resource.get("identifier") or []
    )


def is_study_reference(reference: dict[str, Any], study: StudyDefinition) -> bool:
    """``ResearchStudy/<id>`` (also absolute), ``Reference.identifier``, or a conditional one."""
    logical = reference.get("identifier")
    if isinstance(logical, dict) and _is_study_identifier(
        logical.get("system"), logical.get("value"), study
    ):
        return True
    text = reference.get("reference")
    if not isinstance(text, str):
        return False
    conditional = parse_conditional(text)
    if conditional is not None:
        identifier = conditional.identifier
        return (
            conditional.resource_type == "ResearchStudy"
            and identifier is not None
            and _is_study_identifier(*identifier, study)
        )
    literal = text.split("/_history/")[0]
    target = f"ResearchStudy/{study.id}"
    return literal == target or literal.endswith("/" + target)


def _is_study_identifier(system: object, value: object, study: StudyDefinition) -> bool:
    """The registry value, with the registry's system or none given (``identifier=NCT...``)."""
    return value == study.identifier_value and system in (None, study.identifier_system)


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
