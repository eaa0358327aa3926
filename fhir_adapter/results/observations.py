"""Endpoint results as Observations: visit-level ``endpoint-result``, ``participant-endpoint``."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fhir_adapter.errors import ConfigError
from fhir_adapter.trial.definitions import AnalyteCatalogue
from fhir_adapter.trial.model import ParticipantResult, VisitResult

from .study import subject_ids
from .vocab import (
    INTERPRETATION_DISPLAY,
    REMISSION_CODES,
    SYSTEMS,
    V3_INTERPRETATION,
    fhir_time,
    identifier_id,
    quantity,
)

__all__ = [
    "coded_value",
    "participant_observation",
    "participant_result_id",
    "visit_observation",
    "visit_result_id",
]

#: The Quantity unit of each component that is not in the analyte's canonical unit.
COMPONENT_UNITS = {
    "percent-change": "%",
    "fold-change": "1",
    "fold-uln": "1",
    "protein-rate-bsa": "mg/(m2.h)",
    "upcr": "mg/mg",
}


def visit_result_id(key: str) -> str:
    return identifier_id(SYSTEMS["endpoint-result"], key)


def participant_result_id(key: str) -> str:
    return identifier_id(SYSTEMS["participant-endpoint"], key)


def _coding(name: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": SYSTEMS[name], "code": code}
    if display:
        coding["display"] = display
    return coding


def coded_value(code: str) -> dict[str, Any]:
    """A participant-level or remission code as a CodeableConcept (remission or v3 D/N/U)."""
    if code in REMISSION_CODES:
        return {"coding": [_coding("remission", code)]}
    if code in INTERPRETATION_DISPLAY:
        return {
            "coding": [
                {"system": V3_INTERPRETATION, "code": code, "display": INTERPRETATION_DISPLAY[code]}
            ]
        }
    return {"text": code}


def _component(code: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"code": {"coding": [_coding("endpoint-component", code)]}, **value}


def _components(result: VisitResult) -> list[dict[str, Any]]:
    unit = result.unit
    out: list[dict[str, Any]] = []
    if result.baseline is not None:
        baseline = quantity(result.baseline, unit, result.baseline_comparator)
        out.append(_component("baseline", {"valueQuantity": baseline}))
    quantities: list[tuple[str, Decimal | None, str]] = [
        ("change", result.change, unit),
        ("percent-change", result.percent_change, COMPONENT_UNITS["percent-change"]),
        ("fold-change", result.fold_change, COMPONENT_UNITS["fold-change"]),
        ("uln", result.uln, unit),
        ("fold-uln", result.fold_uln, COMPONENT_UNITS["fold-uln"]),
        ("protein-rate-bsa", result.protein_rate_bsa, COMPONENT_UNITS["protein-rate-bsa"]),
        ("upcr", result.upcr, COMPONENT_UNITS["upcr"]),
    ]
    out += [
        _component(c, {"valueQuantity": quantity(v, u)}) for c, v, u in quantities if v is not None
    ]
    if result.ctcae_grade is not None:
        out.append(_component("ctcae-grade", {"valueInteger": int(result.ctcae_grade)}))
    if result.remission is not None:
        out.append(_component("remission", {"valueCodeableConcept": coded_value(result.remission)}))
    if result.egfr_method is not None:
        method = {"coding": [_coding("egfr-method", result.egfr_method)]}
        out.append(_component("egfr-method", {"valueCodeableConcept": method}))
    return out


def _head(profile: str, identifier: tuple[str, str], category: str) -> dict[str, Any]:
    system, value = identifier
    make_id = visit_result_id if system == SYSTEMS["endpoint-result"] else participant_result_id
    return {
        "resourceType": "Observation",
        "id": make_id(value),
        "meta": {"profile": [SYSTEMS[profile]]},
        "identifier": [{"system": system, "value": value}],
        "status": "final",
        "category": [{"coding": [_coding("trial-endpoint", category)]}],
    }


def _subject(subject: str) -> dict[str, Any]:
    patient_id, research_subject_id = subject_ids(subject)
    return {
        "subject": {"reference": f"Patient/{patient_id}"},
        "focus": [{"reference": f"ResearchSubject/{research_subject_id}"}],
    }


def visit_observation(
    result: VisitResult,
    catalogue: AnalyteCatalogue,
    source_reference: Callable[[str], str],
) -> dict[str, Any]:
    """One visit-level endpoint Observation; ``source_reference`` pseudonymises source keys."""
    analyte = catalogue.analytes.get(result.analyte)
    if analyte is None:
        raise ConfigError(
            f"result {result.key}: analyte {result.analyte!r} is not in the catalogue"
        )
    canonical = analyte.canonical
    resource = _head(
        "profile-endpoint-result", (SYSTEMS["endpoint-result"], result.key), "endpoint-result"
    )
    resource["extension"] = [
        {"url": SYSTEMS["visit-extension"], "valueCoding": _coding("trial-visit", result.visit)}
    ]
    analyte_coding = {"system": canonical.system, "code": canonical.code}
    if canonical.display:
        analyte_coding["display"] = canonical.display
    resource["code"] = {
        "coding": [_coding("trial-endpoint", result.endpoint), analyte_coding],
        "text": f"{analyte.name}, {result.endpoint} endpoint",
    }
    resource.update(_subject(result.subject))
    resource["effectiveDateTime"] = fhir_time(result.at)
    resource["valueQuantity"] = quantity(result.value, result.unit, result.comparator)
    if result.interpretation:
        resource["interpretation"] = [coded_value(result.interpretation)]
    components = _components(result)
    if components:
        resource["component"] = components
    derived = [source_reference(k) for k in result.sources if k.startswith("Observation/")]
    if derived:
        resource["derivedFrom"] = [{"reference": r} for r in dict.fromkeys(derived)]
    return resource


def _participant_value(value: bool | int | str) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int):
        return {"valueInteger": value}
    return {"valueCodeableConcept": coded_value(value)}


def participant_observation(
    result: ParticipantResult, source_reference: Callable[[str], str]
) -> dict[str, Any]:
    """One participant-level endpoint Observation, derived from visit-level results, and from
    source Observations (``Observation/<adapter id>`` keys, pseudonymised by
    ``source_reference``) where a value has no visit-level result (a maximum CTCAE grade
    reached outside every window)."""
    resource = _head(
        "profile-participant-endpoint",
        (SYSTEMS["participant-endpoint"], result.key),
        "participant-endpoint",
    )
    resource["code"] = {"coding": [_coding("trial-endpoint", result.code)]}
    resource.update(_subject(result.subject))
    resource.update(_participant_value(result.value))
    if result.age_at_day0 is not None:
        age = quantity(int(result.age_at_day0), "a")
        resource["component"] = [_component("age-at-day0", {"valueQuantity": age})]
    if result.sources:
        resource["derivedFrom"] = [
            {"reference": source_reference(k) if k.startswith("Observation/")
             else f"Observation/{visit_result_id(k)}"}
            for k in dict.fromkeys(result.sources)
        ]
    return resource
