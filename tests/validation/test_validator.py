"""The Validator on real data: HL7's examples, the published definitions, the sample Bundles."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import fhirpathpy
import pytest
from fhirpathpy.models import models

from fhir_adapter.errors import Issue, UnusableInput
from fhir_adapter.fhir.parse import parse_resource
from fhir_adapter.paths import mappings_dir, profiles_dir, sample_bundles_dir
from fhir_adapter.terminology import SiteCodeMaps, SiteMapping
from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition
from fhir_adapter.validation import (
    LAB_OBSERVATION,
    MSC_ADMINISTRATION,
    TRIAL_PATIENT,
    Validator,
    to_operation_outcome,
)
from fhir_adapter.validation.invariants import Invariant

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "validation"
#: the shared data beside the repository (or beside a folder holding it, for a worktree)
EXAMPLES = next(
    (p / "shared" / "data" / "hl7-r4-examples" for p in REPO.parents
     if (p / "shared" / "data" / "hl7-r4-examples").is_dir()),
    REPO.parent / "shared" / "data" / "hl7-r4-examples",
)
#: Official examples HL7 shipped that are not valid R4, with the reason. (None so far.)
HL7_INVALID: dict[str, str] = {}


def _valid(name: str) -> dict[str, Any]:
    return json.loads((DATA / "valid" / f"{name}.json").read_text("utf-8"))


def _examples() -> list[Path]:
    return sorted(EXAMPLES.glob("*.json")) if EXAMPLES.is_dir() else []


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"{EXAMPLES} is absent (beside the repository)")
@pytest.mark.parametrize("path", _examples(), ids=lambda p: p.name)
def test_official_examples_pass_base_r4(validator: Validator, path: Path) -> None:
    resource = json.loads(path.read_text("utf-8"))
    errors = [i for i in validator.validate(resource) if i.severity in ("error", "fatal")]
    if path.name in HL7_INVALID:
        assert errors, f"{path.name} was listed invalid: {HL7_INVALID[path.name]}"
    else:
        assert errors == []


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"{EXAMPLES} is absent (beside the repository)")
@pytest.mark.parametrize("path", _examples(), ids=lambda p: p.name)
def test_official_examples_pass_under_the_base_profile_of_their_type(
    validator: Validator, path: Path
) -> None:
    """``--profile http://hl7.org/fhir/StructureDefinition/[type]``: base R4 only."""
    resource = json.loads(path.read_text("utf-8"))
    base = f"http://hl7.org/fhir/StructureDefinition/{resource['resourceType']}"
    errors = [i for i in validator.validate(resource, profile=base)
              if i.severity in ("error", "fatal")]
    assert errors == []
    assert all(not (i.source or "").startswith("https://fhir-adapter.org")
               for i in validator.validate(resource, profile=base))


def test_examples_folder_holds_the_expected_kinds() -> None:
    if not EXAMPLES.is_dir():
        pytest.skip(f"{EXAMPLES} is absent")
    kinds = {p.name.split("-")[0] for p in _examples()}
    assert {"Observation", "Patient", "MedicationAdministration", "Bundle"} <= kinds


@pytest.mark.parametrize("path", sorted(profiles_dir().glob("*.json")), ids=lambda p: p.name)
def test_published_definitions_are_valid_r4(validator: Validator, path: Path) -> None:
    resource = json.loads(path.read_text("utf-8"))
    parse_resource(resource)  # raises StructureError on any problem
    assert validator.validate(resource) == []
    assert (
        resource["url"]
        == f"https://fhir-adapter.org/fhir/{resource['resourceType']}/{resource['id']}"
    )


def test_snapshots_carry_every_differential_element() -> None:
    for path in profiles_dir().glob("StructureDefinition-*.json"):
        sd = json.loads(path.read_text("utf-8"))
        snapshot = {e["id"]: e for e in sd["snapshot"]["element"]}
        for element in sd["differential"]["element"]:
            merged = snapshot[element["id"]]
            for key, value in element.items():
                if key == "constraint":
                    keys = {c["key"] for c in merged["constraint"]}
                    assert {c["key"] for c in value} <= keys
                else:
                    assert merged[key] == value, (path.name, element["id"], key)


def test_analyte_valueset_is_in_sync_with_the_catalogue() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "build_analyte_valueset", REPO / "profiles" / "tools" / "build_analyte_valueset.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (profiles_dir() / "ValueSet-analyte.json").read_text("utf-8")
    assert committed == module.render(mappings_dir() / "analytes.toml")
    # and independently: every code of the TOML is in the ValueSet
    catalogue = AnalyteCatalogue.from_file(mappings_dir() / "analytes.toml")
    listed = {
        (inc["system"], c["code"])
        for inc in json.loads(committed)["compose"]["include"]
        for c in inc["concept"]
    }
    assert listed == set(catalogue.by_code)


def test_core_required_codes_come_from_the_packages(validator: Validator) -> None:
    codes = validator.core.codes
    assert codes["http://hl7.org/fhir/ValueSet/observation-status"] == {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    }
    assert codes["http://hl7.org/fhir/ValueSet/administrative-gender"] == {
        "male",
        "female",
        "other",
        "unknown",
    }
    assert {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"} == codes[
        "http://hl7.org/fhir/ValueSet/http-verb"
    ]


# -- which profile applies ------------------------------------------------------------------


def test_profile_chosen_by_content(validator: Validator) -> None:
    lab = _valid("trial-lab-observation")
    del lab["meta"]
    assert validator.profile_for(lab) == LAB_OBSERVATION
    msc = _valid("msc-administration")
    del msc["meta"]
    assert validator.profile_for(msc) == MSC_ADMINISTRATION
    patient = _valid("trial-patient")
    del patient["meta"]
    assert validator.profile_for(patient) is None
    assert validator.profile_for(patient, enrolled=True) == TRIAL_PATIENT
    other = copy.deepcopy(lab)
    other["code"] = {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}
    assert validator.profile_for(other) is None


def test_explicit_profile_wins_and_unknown_profile_is_unusable(validator: Validator) -> None:
    patient = _valid("trial-patient")
    del patient["meta"], patient["birthDate"]
    assert validator.validate(patient) == []
    issues = validator.validate(patient, profile=TRIAL_PATIENT)
    assert [i.expression for i in issues] == ["Patient.birthDate"]
    with pytest.raises(UnusableInput):
        validator.validate(patient, profile="https://example.org/StructureDefinition/nope")


def test_unconvertible_unit_breaks_the_lab_profile_even_without_meta(validator: Validator) -> None:
    lab = _valid("trial-lab-observation")
    del lab["meta"]
    lab["valueQuantity"].update(unit="mg/dL", code="mg/dL")  # 14682-9 is the molar code
    issues = validator.validate(lab)
    assert [(i.code, i.expression) for i in issues] == [("value", "Observation.valueQuantity.code")]
    assert "umol/L" in issues[0].diagnostics


def test_site_codes_through_the_site_maps(
    catalogue: AnalyteCatalogue, study: StudyDefinition
) -> None:
    site = ("https://intranet.aumc.nl/labtestcodes", "20005")
    lab = _valid("trial-lab-observation")
    lab["code"] = {"coding": [{"system": site[0], "code": site[1]}]}
    plain = Validator(catalogue, study)
    assert [i.expression for i in plain.validate(lab)] == ["Observation.code"]

    maps = SiteCodeMaps()
    maps.add(SiteMapping(*site, "http://loinc.org", "14682-9", "test"))  # creatinine, umol/L
    mapped = Validator(catalogue, study, site_maps=maps)
    assert mapped.validate(lab) == []
    del lab["meta"]
    assert mapped.profile_for(lab) == LAB_OBSERVATION
    lab["valueQuantity"].update(unit="g/L", code="g/L")
    assert [i.expression for i in mapped.validate(lab)] == ["Observation.valueQuantity.code"]


# -- Bundles and outcomes ---------------------------------------------------------------------


def test_bundle_entries_carry_their_index(validator: Validator) -> None:
    good = _valid("trial-lab-observation")
    bad = copy.deepcopy(good)
    bad["status"] = "done"
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-00000000000{i}", "resource": r}
            for i, r in enumerate([good, bad, good])
        ],
    }
    found = validator.validate_bundle(bundle)
    assert [(n, i.expression) for n, i in found] == [(1, "Bundle.entry[1].resource.status")]


def test_reference_targets_resolved_through_full_urls(validator: Validator) -> None:
    lab = _valid("trial-lab-observation")
    lab["subject"] = {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"}
    device = {"resourceType": "Device", "id": "d1"}
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111", "resource": device},
            {"fullUrl": "urn:uuid:22222222-2222-4222-8222-222222222222", "resource": lab},
        ],
    }
    found = validator.validate_bundle(bundle)
    assert [(n, i.expression) for n, i in found] == [(1, "Bundle.entry[1].resource.subject")]


def test_operation_outcome_shape() -> None:
    outcome = to_operation_outcome(
        [Issue("error", "value", "Observation.valueQuantity.code", "unit 'x' cannot be converted")]
    )
    assert outcome == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "value",
                "diagnostics": "unit 'x' cannot be converted",
                "expression": ["Observation.valueQuantity.code"],
            }
        ],
    }
    assert to_operation_outcome([])["issue"][0]["severity"] == "information"


def test_sample_bundles_validate_clean(validator: Validator) -> None:
    bundles = sorted(sample_bundles_dir().glob("*.json"))
    bundles = [
        p for p in bundles if json.loads(p.read_text("utf-8")).get("resourceType") == "Bundle"
    ]
    if not bundles:
        pytest.skip("sample_bundles/ has no Bundle yet")
    for path in bundles:
        found = validator.validate_bundle(json.loads(path.read_text("utf-8")))
        assert found == [], f"{path.name}: {found[:5]}"


# -- the invariant shortcuts agree with the engine -------------------------------------------


_ALL_ENTRIES = (
    "entry.all(request.exists() = (%resource.type = 'batch' or %resource.type = 'history'))"
)


@pytest.mark.parametrize(
    ("expression", "node"),
    [
        ("dataAbsentReason.empty() or value.empty()", {"valueQuantity": {"value": 1}}),
        (
            "dataAbsentReason.empty() or value.empty()",
            {"valueQuantity": {"value": 1}, "dataAbsentReason": {"text": "x"}},
        ),
        ("extension.exists() != value.exists()", {"url": "u", "valueString": "x"}),
        (
            "extension.exists() != value.exists()",
            {"url": "u", "valueString": "x", "extension": [{"url": "v", "valueString": "y"}]},
        ),
        (
            "value.empty() or component.code.where(coding.intersect(%resource.code.coding)"
            ".exists()).empty()",
            {
                "code": {"coding": [{"system": "s", "code": "c"}]},
                "valueString": "x",
                "component": [{"code": {"coding": [{"system": "s", "code": "c"}]}}],
            },
        ),
        ("low.exists() or high.exists() or text.exists()", {"appliesTo": [{"text": "x"}]}),
        (
            _ALL_ENTRIES,
            {"type": "batch", "entry": [{"request": {"method": "GET"}}, {"fullUrl": "urn:x"}]},
        ),
        (
            _ALL_ENTRIES,
            {"type": "batch", "entry": [{"request": {"method": "GET"}}]},
        ),
        (
            "(isModifier.exists() and isModifier) implies isModifierReason.exists()",
            {"isModifier": False},
        ),
    ],
)
def test_invariant_shortcuts_agree_with_fhirpathpy(expression: str, node: dict[str, Any]) -> None:
    invariant = Invariant("t-1", "error", "test", expression)
    resource = {"resourceType": "Observation", **node}
    engine = fhirpathpy.evaluate(resource, expression, {"resource": resource}, models["r4"])
    engine_holds = engine != [False]
    # choice names are resolved by the shortcut itself; the engine needs the FHIR model
    assert invariant.holds(resource, resource) is engine_holds
    assert invariant.holds(resource, resource) is invariant.holds(resource, resource)


def test_trial_patient_applies_to_the_enrolled_entries_of_a_bundle(validator: Validator) -> None:
    # trial-patient requires gender and birthDate; base R4 requires neither
    bare = {"resourceType": "Patient", "identifier": [{"system": "urn:x", "value": "1"}]}
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{n}0000000-0000-4000-8000-000000000000",
                   "resource": dict(bare)} for n in (1, 2)],
    }
    assert validator.validate_bundle(bundle, enrolled=()) == []
    found = validator.validate_bundle(bundle, enrolled=[1])
    assert {index for index, _ in found} == {1}
    assert {issue.expression for _, issue in found} == {
        "Bundle.entry[1].resource.gender", "Bundle.entry[1].resource.birthDate"}
    assert len(validator.validate_bundle(bundle, enrolled=True)) == 4
