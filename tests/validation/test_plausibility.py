"""Plausibility at the door: the validator's issues for impossible and implausible values (the
ranges of mappings/analytes.toml), the site's choice to keep implausible values with a warning,
and times in the future or before the patient's birth. Expected values worked out by hand."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition
from fhir_adapter.validation import LAB_OBSERVATION, MSC_ADMINISTRATION, Validator
from tests.validation.conftest import DATA

#: the server's clock in these tests: 2026-01-01 00:00 UTC (03:30 in Tehran)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _valid(profile: str) -> dict[str, Any]:
    resource: dict[str, Any] = json.loads((DATA / "valid" / f"{profile}.json").read_text("utf-8"))
    return resource


def lab(code: str = "2160-0", value: float = 0.6, unit: str = "mg/dL",
        **changes: Any) -> dict[str, Any]:
    resource = _valid("trial-lab-observation")
    resource.pop("referenceRange")
    resource["code"]["coding"] = [{"system": "http://loinc.org", "code": code}]
    resource["valueQuantity"] = {"value": value, "unit": unit,
                                 "system": "http://unitsofmeasure.org", "code": unit}
    resource.update(changes)
    return resource


@pytest.fixture(scope="module")
def clocked(catalogue: AnalyteCatalogue, study: StudyDefinition) -> Validator:
    return Validator(catalogue, study, clock=lambda: NOW)


@pytest.fixture(scope="module")
def warns(catalogue: AnalyteCatalogue, study: StudyDefinition) -> Validator:
    return Validator(catalogue, study, implausible="warn", clock=lambda: NOW)


def _found(validator: Validator, resource: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    return [(i.severity, i.rule, i.expression or "") for i in validator.validate(resource)]


def test_an_implausible_creatinine_is_refused_naming_rule_element_and_profile(
        clocked: Validator) -> None:
    [issue] = clocked.validate(lab(value=60))
    assert (issue.severity, issue.code, issue.expression, issue.source, issue.rule) == (
        "error", "value", "Observation.valueQuantity.value", LAB_OBSERVATION, "plausible-range")
    assert issue.described() == (
        "60 mg/dL is implausible for serum creatinine (plausible 0.05 to 20 mg/dL); 60 umol/L "
        f"is 0.68 mg/dL: check the unit (rule plausible-range of {LAB_OBSERVATION})")


def test_the_site_setting_makes_an_implausible_value_a_warning(warns: Validator) -> None:
    assert _found(warns, lab(value=60)) == [
        ("warning", "plausible-range", "Observation.valueQuantity.value")]
    # an impossible value stays refused
    assert _found(warns, lab(value=-0.6)) == [
        ("error", "physical-minimum", "Observation.valueQuantity.value")]
    assert _found(warns, lab("2889-4", -1.2, "g/(24.h)")) == [
        ("error", "physical-minimum", "Observation.valueQuantity.value")]


def test_a_plausible_value_and_a_censored_one_pass(clocked: Validator) -> None:
    assert clocked.validate(lab(value=0.6)) == []
    # 1768 umol/L = 20 mg/dL, the bound
    assert clocked.validate(lab("14682-9", 1768, "umol/L")) == []
    censored = lab(value=25)
    censored["valueQuantity"]["comparator"] = "<"  # below a limit of 25: may be plausible
    assert clocked.validate(censored) == []
    censored["valueQuantity"]["comparator"] = ">"  # above 25: above the bound of 20
    assert _found(clocked, censored) == [
        ("error", "plausible-range", "Observation.valueQuantity.value")]


@pytest.mark.parametrize(("effective", "future"), [
    ("2031", True),                        # the year 2031 starts in 2031
    ("2026-01-01T00:04:00Z", False),       # 4 minutes ahead: within the clock skew of 5
    ("2026-01-01T00:06:00Z", True),
    ("2026-01-01T03:34:00+03:30", False),  # the same 4 minutes, written in Tehran time
    ("2026-01-01", False),                 # midnight in Tehran is 2025-12-31T20:30Z
    ("2026-01-02", True),                  # 2026-01-01T20:30Z, 20 h 30 ahead
])
def test_an_effective_time_in_the_future_is_refused(
        clocked: Validator, effective: str, future: bool) -> None:
    expected = [("error", "future-time", "Observation.effectiveDateTime")] if future else []
    assert _found(clocked, lab(effectiveDateTime=effective)) == expected


def test_a_period_ending_in_the_future_is_refused_at_its_end(clocked: Validator) -> None:
    resource = lab()
    resource.pop("effectiveDateTime")
    resource["effectivePeriod"] = {"start": "2025-12-31T08:00:00Z", "end": "2026-01-02T08:00:00Z"}
    assert _found(clocked, resource) == [
        ("error", "future-time", "Observation.effectivePeriod.end")]


def test_an_infusion_in_the_future_is_refused(clocked: Validator) -> None:
    infusion = _valid("msc-administration")
    infusion["effectiveDateTime"] = "2027-03-01T10:00:00+03:30"
    [issue] = clocked.validate(infusion)
    assert (issue.expression, issue.rule, issue.source) == (
        "MedicationAdministration.effectiveDateTime", "future-time", MSC_ADMINISTRATION)


def _with_patient(observation: dict[str, Any], *, reference: str) -> dict[str, Any]:
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "2012-05-14",
               "gender": "female"}
    observation = copy.deepcopy(observation)
    observation["subject"] = {"reference": reference}
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:7d3c0a4e-1b2f-4c5d-8e9f-0a1b2c3d4e5f", "resource": patient},
        {"fullUrl": "urn:uuid:5f6b8c6e-9a55-4b8e-8d55-2a1c3f0e7d11", "resource": observation}]}


@pytest.mark.parametrize(("effective", "before"), [
    ("2012-05-13", True),
    ("2012-05-14", False),                  # the day of birth
    ("2012-05", False),                     # May 2012 holds days after the birth
    ("2012-04", True),                      # April 2012 ends on the 30th, before it
    ("2012-05-13T08:30:00+04:30", True),    # Tehran kept summer time (+04:30) in May 2012
    ("2012-05-13T20:00:00Z", False),        # 2012-05-14T00:30 in Tehran
])
@pytest.mark.parametrize("reference", ["urn:uuid:7d3c0a4e-1b2f-4c5d-8e9f-0a1b2c3d4e5f",
                                       "Patient/p1"])
def test_a_value_before_the_birth_of_its_patient_in_the_bundle_is_refused(
        clocked: Validator, effective: str, before: bool, reference: str) -> None:
    bundle = _with_patient(lab(effectiveDateTime=effective), reference=reference)
    found = [(n, i.rule, i.expression) for n, i in clocked.validate_bundle(bundle)]
    assert found == ([(1, "before-birth", "Bundle.entry[1].resource.effectiveDateTime")]
                     if before else [])
