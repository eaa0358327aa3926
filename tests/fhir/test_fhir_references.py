"""urn:uuid resolution against a Bundle's fullUrls, dangling references, conditional references."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from fhir_adapter.errors import NotFound, ReferenceError_, UnusableInput, Where
from fhir_adapter.fhir.references import (
    iter_references,
    parse_conditional,
    rewrite_references,
    unresolved_references,
)

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
SYNTHEA = ROOT.parent / "shared" / "data" / "synthea"


def _synthea() -> list[Path]:
    files = sorted(SYNTHEA.glob("*.json")) if SYNTHEA.is_dir() else []
    if not files:
        pytest.skip(f"the Synthea Bundles are not at {SYNTHEA}")
    return files


def test_every_urn_uuid_of_a_synthea_bundle_is_rewritten() -> None:
    for path in _synthea():
        text = path.read_text(encoding="utf-8")
        bundle = json.loads(text)
        pristine = json.loads(text)["entry"]
        # an independent count: every "reference": "urn:uuid:..." written in the file
        expected = len(re.findall(r'"reference"\s*:\s*"urn:uuid:', text))
        targets = {
            e["fullUrl"]: f"{e['resource']['resourceType']}/{uuid.uuid4().hex}"
            for e in bundle["entry"]
        }
        assigned = set(targets.values())
        rewritten = 0
        for index, entry in enumerate(bundle["entry"]):
            before = [r.reference for r in iter_references(entry["resource"])]
            out = rewrite_references(
                entry["resource"], targets, base=f"Bundle.entry[{index}].resource"
            )
            after = [r.reference for r in iter_references(out)]
            assert len(before) == len(after)
            for old, new in zip(before, after, strict=True):
                if old.startswith("urn:uuid:"):
                    assert new == targets[old] and new in assigned
                    rewritten += 1
                else:
                    assert new == old
            assert entry["resource"] == pristine[index]["resource"]  # not mutated
        assert rewritten == expected > 100


def _observation() -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "creatinine"},
        "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
        "specimen": {"reference": "urn:uuid:22222222-2222-4222-8222-222222222222"},
        "performer": [{"reference": "Practitioner/abc"}, {"display": "a lab"}],
    }


def test_a_dangling_urn_uuid_names_its_element() -> None:
    targets = {"urn:uuid:11111111-1111-4111-8111-111111111111": "Patient/p1"}
    with pytest.raises(ReferenceError_) as caught:
        rewrite_references(
            _observation(), targets, base="Bundle.entry[2].resource", where=Where("push.json", 2)
        )
    error = caught.value
    assert error.where == Where("push.json", 2, "Bundle.entry[2].resource.specimen.reference")
    assert "urn:uuid:22222222-2222-4222-8222-222222222222" in error.message
    missing = unresolved_references(_observation(), targets)
    assert [(m.expression, m.reference) for m in missing] == [
        ("Observation.specimen.reference", "urn:uuid:22222222-2222-4222-8222-222222222222")
    ]


def test_references_are_found_in_lists_with_their_index() -> None:
    found = [(r.expression, r.reference) for r in iter_references(_observation())]
    assert ("Observation.performer[0].reference", "Practitioner/abc") in found
    assert len(found) == 3


def test_conditional_reference_parsed() -> None:
    ref = parse_conditional("Patient?identifier=https://hospital.example/mrn%7C12345")
    assert ref is not None
    assert ref.resource_type == "Patient"
    assert ref.identifier == ("https://hospital.example/mrn", "12345")
    plain = parse_conditional("ResearchStudy?identifier=https://clinicaltrials.gov|NCT02382874")
    assert plain is not None and plain.identifier == ("https://clinicaltrials.gov", "NCT02382874")
    any_system = parse_conditional("Patient?identifier=12345&active=true")
    assert any_system is not None
    assert any_system.identifier == (None, "12345")
    assert any_system.params == (("identifier", "12345"), ("active", "true"))
    assert parse_conditional("Patient/123") is None
    with pytest.raises(UnusableInput):
        parse_conditional("Patient?identifier")


def test_conditional_references_resolved_by_the_caller() -> None:
    resource = {"resourceType": "Observation", "subject": {"reference": "Patient?identifier=s|v"}}

    def known(ref):
        assert ref.identifier == ("s", "v")
        return "Patient/p9"

    out = rewrite_references(resource, {}, conditional=known)
    assert out["subject"]["reference"] == "Patient/p9"

    def none(ref):
        raise NotFound("no patient matches")

    with pytest.raises(NotFound) as caught:
        rewrite_references(resource, {}, conditional=none)
    assert caught.value.where.element == "Observation.subject.reference"
    assert rewrite_references(resource, {}) == resource  # left as it is without a resolver
