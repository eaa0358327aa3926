"""validate, results, outbox and push as a user runs them: exit codes and one line per error."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.builders import MRN, creatinine, enrolled_bundle, patient

EXE = Path(sys.executable).with_name("fhir-adapter")
TRIAL_PATIENT = "https://fhir-adapter.org/fhir/StructureDefinition/trial-patient"


def run(*args: str, cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_ADAPTER_")}
    env["FHIR_ADAPTER_DATABASE_URL"] = f"sqlite:///{cwd / 'adapter.db'}"
    env.update({f"FHIR_ADAPTER_{k.upper()}": v for k, v in settings.items()})
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300, check=False)


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def write(folder: Path, name: str, content: Any) -> Path:
    path = folder / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def _invalid_observation() -> dict[str, Any]:
    obs = creatinine("L1", 1.0, "kg", subject="Patient/p1")
    obs["status"] = "finished"  # not an ObservationStatus code
    return obs


# -- validate ---------------------------------------------------------------------------------
def test_validate_a_valid_resource(tmp_path: Path) -> None:
    result = run("validate", str(write(tmp_path, "p.json", patient())), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "p.json: valid (0 errors" in result.stdout
    assert not (tmp_path / "adapter.db").exists()  # offline: no database is opened


def test_validate_not_json_not_fhir_invalid(tmp_path: Path) -> None:
    cases = [("broken.json", '{"resourceType": "Patient", ', 2, "not JSON"),
             ("list.json", "[1, 2]", 2, "not FHIR"),
             ("plain.json", '{"name": "x"}', 2, "not FHIR")]
    for name, content, code, words in cases:
        result = run("validate", str(write(tmp_path, name, content)), cwd=tmp_path)
        assert result.returncode == code, (name, result.stderr)
        [line] = error_lines(result)
        assert name in line and words in line
    bad = write(tmp_path, "bad.json", _invalid_observation())
    result = run("validate", str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert error_lines(result) == []
    lines = result.stdout.splitlines()
    assert any(f"{bad}: Observation.status: error:" in line for line in lines)
    assert any(f"{bad}: Observation.valueQuantity.code: error:" in line and "'kg'" in line
               for line in lines)
    assert lines[-1].startswith(f"{bad}: invalid (")


def test_validate_json_format_and_several_files(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.json", _invalid_observation())
    good = write(tmp_path, "good.json", patient())
    single = run("validate", "--format", "json", str(bad), cwd=tmp_path)
    assert single.returncode == 1
    outcome = json.loads(single.stdout)
    assert outcome["resourceType"] == "OperationOutcome"
    assert ["Observation.status"] in [i.get("expression") for i in outcome["issue"]]
    both = run("validate", "--format", "json", str(good), str(bad), cwd=tmp_path)
    assert both.returncode == 1
    bundle = json.loads(both.stdout)
    assert [e["resource"]["issue"][0]["severity"] for e in bundle["entry"]][0] == "information"
    assert len(bundle["entry"]) == 2


def test_validate_an_implausible_value_refused_or_warned_as_the_site_says(tmp_path: Path) -> None:
    # 5304 umol/L / 88.4 = 60 mg/dL, above the plausible 20 mg/dL of serum creatinine
    path = write(tmp_path, "o.json", creatinine("L1", 5304, subject="Patient/p1"))
    refused = run("validate", str(path), cwd=tmp_path)
    assert refused.returncode == 1
    assert (f"{path}: Observation.valueQuantity.value: error: 5304 umol/L (60 mg/dL) is "
            "implausible for serum creatinine") in refused.stdout
    assert "rule plausible-range of" in refused.stdout
    kept = run("validate", "--format", "json", str(path), cwd=tmp_path,
               implausible_values="warn")
    assert kept.returncode == 0, kept.stdout
    [issue] = json.loads(kept.stdout)["issue"]
    assert (issue["severity"], issue["expression"]) == ("warning",
                                                        ["Observation.valueQuantity.value"])
    assert issue["extension"][1]["valueString"] == "plausible-range"  # message-id


def test_validate_a_bundle_entry_by_entry(tmp_path: Path) -> None:
    bundle = enrolled_bundle(creatinine("L1", 88.4), creatinine("L2", 2.0, "mmol/d"))
    result = run("validate", str(write(tmp_path, "b.json", bundle)), cwd=tmp_path)
    assert result.returncode == 1
    assert "entry 4: Bundle.entry[4].resource.valueQuantity.code: error:" in result.stdout
    assert "entry 3:" not in result.stdout


def test_validate_with_a_forced_profile(tmp_path: Path) -> None:
    body = patient()
    del body["birthDate"]
    path = write(tmp_path, "p.json", body)
    assert run("validate", str(path), cwd=tmp_path).returncode == 0  # no profile applies
    forced = run("validate", "--profile", TRIAL_PATIENT, str(path), cwd=tmp_path)
    assert forced.returncode == 1 and "Patient.birthDate" in forced.stdout
    unknown = run("validate", "--profile", "https://example.org/nope", str(path), cwd=tmp_path)
    assert unknown.returncode == 2
    [line] = error_lines(unknown)
    assert "unknown profile" in line


def test_validate_command_line_mistakes(tmp_path: Path) -> None:
    missing = run("validate", str(tmp_path / "nowhere.json"), cwd=tmp_path)
    assert missing.returncode == 2
    [line] = error_lines(missing)
    assert "nowhere.json" in line and "no such file" in line
    fmt = run("validate", "--format", "xml", str(write(tmp_path, "p.json", patient())),
              cwd=tmp_path)
    assert fmt.returncode == 2 and len(error_lines(fmt)) == 1


# -- results, outbox, push --------------------------------------------------------------------
def _loaded(tmp_path: Path) -> None:
    bundle = enrolled_bundle(creatinine("L0", 88.4, at="2024-03-09T08:00:00+03:30"),
                             creatinine("L1", 79.56))
    result = run("ingest", str(write(tmp_path, "in.json", bundle)), cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_results_as_a_bundle_and_as_csv(tmp_path: Path) -> None:
    _loaded(tmp_path)
    shown = run("results", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    bundle = json.loads(shown.stdout)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"ResearchStudy", "Observation"} <= kinds
    assert MRN not in shown.stdout and "1001" not in shown.stdout  # pseudonymised
    written = run("results", "--format", "csv", "--out", "table.csv", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert str(tmp_path / "table.csv") in written.stdout
    rows = list(csv.DictReader(io.StringIO((tmp_path / "table.csv").read_text())))
    creat = [r for r in rows if "creatinine" in r.values()]
    assert creat, rows[:3]
    bad = run("results", "--format", "xml", cwd=tmp_path)
    assert bad.returncode == 2 and len(error_lines(bad)) == 1


def test_outbox_lists_what_waits_and_push_needs_a_url(tmp_path: Path) -> None:
    empty = run("outbox", cwd=tmp_path)
    assert empty.returncode == 0 and "nothing pending" in empty.stdout
    _loaded(tmp_path)
    waiting = run("outbox", cwd=tmp_path)
    assert waiting.returncode == 0
    pending = [line for line in waiting.stdout.splitlines() if line.startswith("pending")]
    assert pending and all(" v1 tries 0" in line for line in pending)
    no_url = run("push", cwd=tmp_path)
    assert no_url.returncode == 2
    [line] = error_lines(no_url)
    assert "--to" in line
