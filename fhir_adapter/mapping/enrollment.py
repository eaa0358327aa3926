"""ResearchSubject and ResearchStudy: is it this study, which status, which subject code."""

from __future__ import annotations

from typing import Any

from fhir_adapter.fhir.references import parse_conditional
from fhir_adapter.mapping.facts import SubjectFacts
from fhir_adapter.trial.definitions import StudyDefinition

__all__ = ["is_study_reference", "is_this_study", "read_subject"]


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
