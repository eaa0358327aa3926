"""The negative corpus: one file per rule, each failing at the expected FHIRPath, nowhere else."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from fhir_adapter.paths import profiles_dir
from fhir_adapter.validation import Validator

DATA = Path(__file__).resolve().parents[1] / "data" / "validation"
CASES: dict[str, dict[str, Any]] = json.loads((DATA / "cases.json").read_text("utf-8"))
#: Rules no instance can break alone; the case named here breaks them through their user.
COVERED_BY = {"trial-visit:Extension:max": "endpoint-result:Observation.extension:visit:max"}


def _load(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text("utf-8"))


def test_sockets_are_blocked() -> None:
    with pytest.raises(OSError, match="network access"):
        socket.socket()


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    files = {c["file"] for c in CASES.values()}
    assert len(files) == len(CASES)
    assert files == {p.name for p in (DATA / "negative").glob("*.json")}


@pytest.mark.parametrize("name", sorted(p.name for p in (DATA / "valid").glob("*.json")))
def test_valid_instances_pass(validator: Validator, name: str) -> None:
    resource = _load(f"valid/{name}")
    assert validator.validate(resource) == []
    assert validator.profile_for(resource) == profiles_url(name.removesuffix(".json"))


def profiles_url(profile_id: str) -> str:
    return f"https://fhir-adapter.org/fhir/StructureDefinition/{profile_id}"


@pytest.mark.parametrize("rule", sorted(CASES))
def test_negative_case_fails_exactly_where_expected(validator: Validator, rule: str) -> None:
    case = CASES[rule]
    issues = validator.validate(_load(f"negative/{case['file']}"))
    assert issues, f"{rule}: no problem found"
    assert all(i.severity == "error" for i in issues)
    assert sorted({i.expression or "" for i in issues}) == case["expected"]


def _stated_rules() -> set[str]:
    """Every rule of the published profiles, read here from their differentials."""
    found = set()
    for path in profiles_dir().glob("StructureDefinition-*.json"):
        sd = json.loads(path.read_text("utf-8"))
        for element in sd["differential"]["element"]:
            rule = f"{sd['id']}:{element['id']}:"
            if element.get("min", 0) > 0:
                found.add(rule + "min")
            if element.get("max", "*") != "*":
                found.add(rule + "max")
            if element["path"].endswith("[x]") and element.get("type"):
                found.add(rule + "type")
            if any(t.get("targetProfile") for t in element.get("type", [])):
                found.add(rule + "target")
            found.update(rule + k for k in element if k.startswith(("fixed", "pattern")))
            if "binding" in element:
                found.add(rule + "binding")
            found.update(rule + c["key"] for c in element.get("constraint", []))
    return found


def test_every_published_rule_has_a_case() -> None:
    stated = _stated_rules()
    assert len(stated) > 150
    missing = sorted(r for r in stated if r not in CASES and COVERED_BY.get(r) not in CASES)
    assert missing == []


def test_required_bindings_of_core_are_exercised() -> None:
    for rule in (
        "base:Observation.status:binding",
        "base:MedicationAdministration.status:binding",
        "base:Patient.gender:binding",
        "base:Bundle.type:binding",
        "base:Bundle.entry.request.method:binding",
        "base:Observation:obs-6",
        "base:Observation:obs-7",
    ):
        assert rule in CASES
