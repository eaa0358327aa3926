"""`fhir-adapter validate` logic: exit codes, text and JSON output, entry indexes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_adapter.paths import profiles_dir
from fhir_adapter.validation import LAB_OBSERVATION, Validator
from fhir_adapter.validation.report import validate_files

DATA = Path(__file__).resolve().parents[1] / "data" / "validation"


def test_valid_file_exits_0(validator: Validator) -> None:
    code, text = validate_files([DATA / "valid" / "trial-lab-observation.json"], validator)
    assert code == 0
    assert text.endswith("valid (0 errors, 0 warnings)")


def test_invalid_bundle_names_entry_and_path(validator: Validator) -> None:
    path = DATA / "negative" / "trial__bundle-entry__unit-code.json"
    code, text = validate_files([path], validator)
    assert code == 1
    assert "entry 0: Bundle.entry[0].resource.valueQuantity.code: error:" in text
    code, out = validate_files([path], validator, fmt="json")
    outcome = json.loads(out)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["Bundle.entry[0].resource.valueQuantity.code"]


def test_unusable_inputs_exit_2(validator: Validator, tmp_path: Path) -> None:
    not_json = tmp_path / "a.json"
    not_json.write_text("{nope", encoding="utf-8")
    not_fhir = tmp_path / "b.json"
    not_fhir.write_text('{"hello": 1}', encoding="utf-8")
    missing = tmp_path / "c.json"
    for path, words in ((not_json, "not JSON"), (not_fhir, "not FHIR"), (missing, "cannot read")):
        code, text = validate_files([path], validator)
        assert code == 2
        assert words in text
    valid = DATA / "valid" / "trial-patient.json"
    code, _ = validate_files([valid, not_json], validator)
    assert code == 2


def test_profile_option_and_several_files(validator: Validator, tmp_path: Path) -> None:
    patient = json.loads((DATA / "valid" / "trial-patient.json").read_text("utf-8"))
    code, _ = validate_files(
        [DATA / "valid" / "trial-patient.json"], validator, profile=LAB_OBSERVATION
    )
    assert code == 1  # a Patient is not a trial-lab-observation
    code, text = validate_files(
        [DATA / "valid" / "trial-patient.json"], validator, profile="https://example.org/x"
    )
    assert code == 2 and "unknown profile" in text
    ndjson = tmp_path / "two.ndjson"
    broken = dict(patient, gender="F")
    ndjson.write_text(json.dumps(patient) + "\n" + json.dumps(broken) + "\n", encoding="utf-8")
    code, out = validate_files(
        [ndjson, DATA / "valid" / "msc-administration.json"], validator, fmt="json"
    )
    assert code == 1
    bundle = json.loads(out)
    assert [e["resource"]["issue"][0]["severity"] for e in bundle["entry"]] == [
        "error",
        "information",
    ]
    code, text = validate_files([ndjson], validator)
    assert "line 2: Patient.gender: error:" in text


def test_json_output_of_a_definition_is_json_alone(
    validator: Validator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Invariants of StructureDefinition call trace(): nothing of it reaches standard output."""
    path = profiles_dir() / "StructureDefinition-trial-patient.json"
    code, out = validate_files([path], validator, fmt="json")
    assert capsys.readouterr().out == ""
    assert (code, json.loads(out)["issue"][0]["diagnostics"]) == (0, "valid")


def test_ndjson_lines_count_from_one(validator: Validator, tmp_path: Path) -> None:
    lines = tmp_path / "lab.ndjson"
    good = json.loads((DATA / "valid" / "trial-lab-observation.json").read_text("utf-8"))
    bad = dict(good, status="done")
    lines.write_text(f"{json.dumps(good)}\n\n{json.dumps(bad)}\n", encoding="utf-8")
    code, text = validate_files([lines], validator)
    assert code == 1
    assert f"{lines}: line 3: Observation.status: error:" in text
