"""The command line, run as a user runs it: exit codes, one line per error, nothing stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from fhir_adapter.store import Store
from tests.builders import PRODUCT, creatinine, enrolled_bundle

EXE = Path(sys.executable).with_name("fhir-adapter")
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def shared_data(name: str) -> Path:
    """A folder of the real data beside the repository, or a skip saying why it is missing."""
    folder = SHARED_DATA / name
    if not folder.is_dir():
        pytest.skip(f"real data folder {folder} is absent (it lives beside the repository)")
    return folder


def run(*args: str, db: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FHIR_ADAPTER_DATABASE_URL": f"sqlite:///{db}"}
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300, check=False)


def stored(db: Path) -> dict[str, int]:
    store = Store.open(f"sqlite:///{db}")
    try:
        return store.row_counts()
    finally:
        store.close()


def kept(db: Path) -> int:
    """Rows of data in the store; the audit row of the refused call does not count."""
    counts = stored(db)
    assert counts.pop("audit") == 1  # the refusal itself is audited
    return sum(counts.values())


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_a_file_that_is_not_json(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"resourceType": "Bundle", "type": ')
    result = run("ingest", str(bad), db=tmp_path / "a.db", cwd=tmp_path)
    assert result.returncode == 2
    [line] = error_lines(result)
    assert str(bad) in line and "not JSON" in line
    assert "Traceback" not in result.stderr
    assert stored(tmp_path / "a.db")["resource"] == 0


def test_a_reference_to_a_urn_uuid_the_bundle_lacks(tmp_path: Path) -> None:
    lost = creatinine("L1", 88.4, subject="urn:uuid:00000000-0000-4000-8000-000000000000")
    path = tmp_path / "dangling.json"
    path.write_text(json.dumps(enrolled_bundle(lost)))
    result = run("ingest", str(path), db=tmp_path / "a.db", cwd=tmp_path)
    assert result.returncode == 1
    [line] = error_lines(result)
    assert f"{path}: entry 3: " in line and "subject" in line
    assert "urn:uuid:00000000-0000-4000-8000-000000000000" in line
    assert kept(tmp_path / "a.db") == 0


def test_an_observation_whose_unit_cannot_be_converted(tmp_path: Path) -> None:
    path = tmp_path / "unit.json"
    path.write_text(json.dumps(enrolled_bundle(creatinine("L1", 88.4),
                                               creatinine("L2", 2.0, "mmol/d"))))
    result = run("ingest", str(path), db=tmp_path / "a.db", cwd=tmp_path)
    assert result.returncode == 1
    [line] = error_lines(result)
    assert f"{path}: entry 4: " in line and "valueQuantity" in line and "mmol/d" in line
    assert kept(tmp_path / "a.db") == 0


def test_enroll_then_ingest_a_synthea_bundle(tmp_path: Path) -> None:
    source = shared_data("synthea") / "Ali_Herman_75c71918-f07f-4492-af1a-ce006a1e8aaf.json"
    bundle = json.loads(source.read_text())
    patient = bundle["entry"][0]
    assert patient["resource"]["resourceType"] == "Patient"
    bundle["entry"].append({
        "fullUrl": "urn:uuid:3c1d1a7e-0000-4000-8000-00000000ad01",
        "resource": {
            "resourceType": "MedicationAdministration", "status": "completed",
            "medicationCodeableConcept": {"coding": [{"system": PRODUCT, "code": "ad-msc"}]},
            "subject": {"reference": patient["fullUrl"]},
            "effectiveDateTime": "2016-05-01T10:00:00+03:30",
            "dosage": {"dose": {"value": 1.0, "unit": "10*6/kg",
                                "system": "http://unitsofmeasure.org", "code": "10*6/kg"}}},
        "request": {"method": "POST", "url": "MedicationAdministration"}})
    path = tmp_path / "synthea.json"
    path.write_text(json.dumps(bundle))
    db = tmp_path / "a.db"
    mrn = "https://github.com/synthetichealth/synthea|75c71918-f07f-4492-af1a-ce006a1e8aaf"
    assert run("enroll", "--identifier", mrn, "--subject", "SYN-1", db=db, cwd=tmp_path
               ).returncode == 0
    result = run("ingest", str(path), db=db, cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    # What the file holds, counted here from the file itself.
    wanted = {"38483-4": "creatinine", "1742-6": "alt", "1920-8": "ast",
              "8302-2": "height", "29463-7": "weight"}
    in_file = Counter(
        wanted[e["resource"]["code"]["coding"][0]["code"]] for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and e["resource"]["code"]["coding"][0]["code"] in wanted)
    types = Counter(e["resource"]["resourceType"] for e in bundle["entry"])
    store = Store.open(f"sqlite:///{db}")
    try:
        with store.read() as unit:
            [record] = unit.records()
    finally:
        store.close()
    got = Counter(m.analyte for m in record.measurements if m.analyte in wanted.values())
    assert got == in_file and in_file["creatinine"] == 12
    assert {m.unit for m in record.measurements if m.analyte == "creatinine"} == {"mg/dL"}
    assert record.day0 is not None and record.participant.sex == "male"
    # the rest is reported per type: every Encounter, Claim, ... as not kept
    for rtype in ("Encounter", "Claim", "Condition", "Immunization"):
        row = next(line for line in result.stdout.splitlines() if f" {rtype} " in line)
        assert f"{types[rtype]} type out of scope" in row


def test_demo_prints_the_five_participants(tmp_path: Path) -> None:
    from fhir_adapter.paths import sample_bundles_dir

    if not any(p.name != "plan.json" for p in sample_bundles_dir().glob("*.json")):
        pytest.skip("sample_bundles/ holds no bundle yet")
    plan = json.loads((sample_bundles_dir() / "plan.json").read_text())
    codes = [p.get("subject") or p.get("code") for p in plan.get("participants", [])]
    result = run("demo", db=tmp_path / "unused.db", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "fhir-adapter-demo.db").is_file()
    rows = [line for line in result.stdout.splitlines() if line.startswith("\u2502 FSGS-0")]
    assert len(rows) == 5
    if all(codes):
        assert all(any(code in row for row in rows) for code in codes)
    again = run("demo", db=tmp_path / "unused.db", cwd=tmp_path)  # recreated, same answer
    assert again.stdout == result.stdout

    # results.json: the collection result Bundle, in the working directory, and said so
    written = tmp_path / "results.json"
    assert f"written to {written}" in result.stdout
    bundle = json.loads(written.read_text())
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert not any("hospital" in json.dumps(e["resource"].get("identifier", []))
                   for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")

    # the endpoint tables: change = value - baseline, change % = change / baseline x 100
    titles = [line for line in result.stdout.splitlines() if line.startswith("Endpoints of ")]
    assert len(titles) == 5
    checked = 0
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.split("\u2502")[1:-1]]
        if len(cells) != 9 or cells[0] == "endpoint":
            continue
        value, baseline, change, percent = cells[3], cells[5], cells[6], cells[7]
        if not change or not value[0].isdigit() and value[0] != "-":
            continue
        # shown values have at most 3 decimals (eGFR 1): allow what that rounding moves
        slack = Decimal("0.15") if cells[1] == "egfr-computed" else Decimal("0.0015")
        assert abs(Decimal(value) - Decimal(baseline) - Decimal(change)) <= slack, line
        if percent and abs(Decimal(baseline)) >= 10 and cells[1] != "egfr-computed":
            exact = Decimal(change) / Decimal(baseline) * 100
            assert abs(exact - Decimal(percent)) <= Decimal("0.02"), line
        checked += 1
    assert checked > 50
