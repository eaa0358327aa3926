"""``from fhir_adapter import validate``: a dict, its bytes or a file's path in, the
OperationOutcome out (with ``valid``, ``errors``, ``warnings``), offline: no socket (conftest),
no database file."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fhir_adapter import ValidationResult, validate
from fhir_adapter.errors import UnusableInput
from fhir_adapter.paths import mappings_dir
from fhir_adapter.pipeline.validating import offline_validator
from fhir_adapter.settings import Settings
from fhir_adapter.validation.report import report_json, validate_file
from tests.validation.conftest import DATA

LAB = json.loads((DATA / "valid" / "trial-lab-observation.json").read_text("utf-8"))


def implausible_creatinine() -> dict[str, Any]:
    """5304 umol/L: 5304 / 88.4 = 60 mg/dL, above the plausible 20 mg/dL."""
    resource = copy.deepcopy(LAB)
    resource["valueQuantity"]["value"] = 5304
    return resource


def test_a_valid_resource_as_dict_bytes_and_path(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "lab.json"
    path.write_text(json.dumps(LAB))
    for given in (LAB, json.dumps(LAB).encode(), path, str(path)):
        outcome = validate(given)
        assert isinstance(outcome, ValidationResult) and isinstance(outcome, dict)
        assert outcome.valid and outcome.errors == [] and outcome.warnings == []
        assert outcome == {"resourceType": "OperationOutcome", "issue": [
            {"severity": "information", "code": "informational", "diagnostics": "valid"}]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab.json"]  # no database made


def test_errors_name_element_rule_and_profile() -> None:
    outcome = validate({"resourceType": "Patient", "gender": "F"})
    assert not outcome.valid
    [error] = outcome.errors
    assert error.expression == "Patient.gender"
    [issue] = outcome["issue"]
    assert (issue["severity"], issue["expression"]) == ("error", ["Patient.gender"])


def test_an_implausible_value_is_an_error_or_a_warning_as_the_settings_say() -> None:
    refused = validate(implausible_creatinine())
    [error] = refused.errors
    assert (error.expression, error.rule) == ("Observation.valueQuantity.value",
                                              "plausible-range")
    assert error.diagnostics.startswith("5304 umol/L (60 mg/dL) is implausible")
    kept = validate(implausible_creatinine(), settings=Settings(implausible_values="warn"))
    assert kept.valid and [w.rule for w in kept.warnings] == ["plausible-range"]
    # base R4 only: no trial rule applies, so the value is not judged
    assert validate(implausible_creatinine(),
                    profile="http://hl7.org/fhir/StructureDefinition/Observation").valid


def test_a_bundle_is_validated_entry_by_entry() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:5f6b8c6e-9a55-4b8e-8d55-2a1c3f0e7d11", "resource": LAB},
        {"fullUrl": "urn:uuid:5f6b8c6e-9a55-4b8e-8d55-2a1c3f0e7d12",
         "resource": implausible_creatinine()}]}
    outcome = validate(bundle)
    assert [e.expression for e in outcome.errors] == [
        "Bundle.entry[1].resource.valueQuantity.value"]


def test_a_file_gives_what_the_command_line_gives(tmp_path: Path) -> None:
    path = tmp_path / "labs.ndjson"
    path.write_text(json.dumps(LAB) + "\n" + json.dumps(implausible_creatinine()) + "\n")
    outcome = validate(path)
    validator = offline_validator(Settings())
    assert dict(outcome) == report_json([validate_file(path, validator)])
    [issue] = outcome["issue"]
    assert issue["diagnostics"].startswith("line 2: 5304 umol/L (60 mg/dL) is implausible")


@pytest.mark.parametrize(("given", "words"), [
    (b'{"resourceType": ', "not JSON"),
    ({"name": "x"}, "not FHIR"),
    (b"[1, 2]", "not FHIR"),
])
def test_input_that_is_not_fhir_is_one_fatal_issue(given: Any, words: str) -> None:
    outcome = validate(given)
    [issue] = outcome.errors
    assert not outcome.valid and issue.severity == "fatal" and words in issue.diagnostics


def test_an_unreadable_path_is_one_fatal_issue(tmp_path: Path) -> None:
    outcome = validate(tmp_path / "absent.json")
    assert not outcome.valid and "cannot read the file" in outcome.errors[0].diagnostics


def test_an_unknown_profile_is_refused() -> None:
    with pytest.raises(UnusableInput, match="unknown profile"):
        validate(LAB, profile="https://example.org/StructureDefinition/nothing")


def test_other_definition_files_are_read_from_the_settings(tmp_path: Path) -> None:
    # a site whose catalogue allows creatinine up to 100 mg/dL: 60 mg/dL is plausible there
    folder = tmp_path / "mappings"
    folder.mkdir()
    for name in ("study.toml", "queries.toml", "sdtm.toml"):
        (folder / name).write_text((mappings_dir() / name).read_text("utf-8"))
    catalogue = (mappings_dir() / "analytes.toml").read_text("utf-8")
    assert catalogue.count('plausible = ["0.05", "20"]') == 1
    (folder / "analytes.toml").write_text(
        catalogue.replace('plausible = ["0.05", "20"]', 'plausible = ["0.05", "100"]'))
    assert validate(implausible_creatinine(), settings=Settings(mappings_dir=folder)).valid
    assert not validate(implausible_creatinine()).valid
