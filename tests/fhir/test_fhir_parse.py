"""parse_resource on the official R4 examples, and every structural problem as an Issue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_adapter.errors import StructureError
from fhir_adapter.fhir.parse import model_class, parse_resource

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
EXAMPLES = ROOT.parent / "shared" / "data" / "hl7-r4-examples"
KINDS = ("Patient", "Observation", "MedicationAdministration", "Specimen", "ResearchSubject")
FILES = sorted(p for k in KINDS for p in EXAMPLES.glob(f"{k}-*.json")) if EXAMPLES.is_dir() else []


def test_the_examples_are_there() -> None:
    if not EXAMPLES.is_dir():
        pytest.skip(f"the HL7 R4 examples are not at {EXAMPLES}")
    assert len([p for p in FILES if p.name.startswith("Observation-")]) >= 50
    assert len([p for p in FILES if p.name.startswith("Patient-")]) >= 20


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_official_example_parses(path: Path) -> None:
    resource = json.loads(path.read_text(encoding="utf-8"))
    model = parse_resource(resource)
    assert model.get_resource_type() == resource["resourceType"]
    assert model.id == resource.get("id")


def _bad_observation() -> dict:
    return {
        "resourceType": "Observation",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
        "valueQuantity": {"value": "abc", "unit": "mg/dL"},
        "effectiveDateTime": "2024-03-01T10:00:00",
        "component": [{"code": {"text": "x"}, "valueQuantity": {"value": "z"}}],
        "colour": "red",
    }


def test_every_problem_is_an_issue_with_a_fhirpath() -> None:
    with pytest.raises(StructureError) as caught:
        parse_resource(_bad_observation())
    expressions = {i.expression for i in caught.value.issues}
    assert expressions == {
        "Observation.status",
        "Observation.valueQuantity.value",
        "Observation.effectiveDateTime",
        "Observation.component[0].valueQuantity.value",
        "Observation.colour",
    }
    assert all(i.severity == "error" and i.code == "structure" for i in caught.value.issues)
    by_path = {i.expression: i.diagnostics for i in caught.value.issues}
    assert "'abc'" in by_path["Observation.valueQuantity.value"]
    assert "decimal" in by_path["Observation.valueQuantity.value"]
    assert "status" in by_path["Observation.status"]
    assert "colour" in by_path["Observation.colour"]
    assert "4 more" in caught.value.message


def test_expressions_start_at_the_bundle_entry_when_asked() -> None:
    with pytest.raises(StructureError) as caught:
        parse_resource(_bad_observation(), base="Bundle.entry[3].resource")
    assert "Bundle.entry[3].resource.valueQuantity.value" in {
        i.expression for i in caught.value.issues
    }


def test_a_reference_written_as_a_string_is_refused() -> None:
    resource = {"resourceType": "Specimen", "subject": "Patient/1"}
    with pytest.raises(StructureError) as caught:
        parse_resource(resource)
    assert [i.expression for i in caught.value.issues] == ["Specimen.subject"]
    assert "object" in caught.value.issues[0].diagnostics


@pytest.mark.parametrize("kind", ["Foo", "Quantity", "DomainResource"])
def test_a_type_that_is_no_resource_is_a_structure_error(kind: str) -> None:
    with pytest.raises(StructureError) as caught:
        parse_resource({"resourceType": kind})
    assert kind in caught.value.message
    assert model_class(kind) is None


def test_no_resource_type() -> None:
    with pytest.raises(StructureError):
        parse_resource({"id": "x"})
