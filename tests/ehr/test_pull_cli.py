"""``fhir-adapter pull`` as a command against sekmet-fhir: a wrong key, and a kill -9 mid-pull."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy

from fhir_adapter.cli import main
from fhir_adapter.outbound.smart import create_key
from fhir_adapter.pipeline import Pipeline
from fhir_adapter.settings import Settings
from tests.test_golden import KEY, normalise_bundle

from .conftest import CLIENT_ID, PARTICIPANT_FILES, Ehr
from .test_pull_sekmet import SCOPE

MRN = "https://hospital.example.org/fhir/sid/mrn"


def _env(tmp_path: Path, ehr: Ehr, name: str, key_file: Path | None = None) -> dict[str, str]:
    return {"FHIR_ADAPTER_DATABASE_URL": f"sqlite:///{tmp_path / name}",
            "FHIR_ADAPTER_PSEUDONYM_KEY": KEY, "FHIR_ADAPTER_BULK_WORKERS": "0",
            "FHIR_ADAPTER_EHR_BASE_URL": ehr.base, "FHIR_ADAPTER_EHR_CLIENT_ID": CLIENT_ID,
            "FHIR_ADAPTER_EHR_KEY_FILE": str(key_file or ehr.key_file),
            "FHIR_ADAPTER_EHR_SCOPE": SCOPE,
            "FHIR_ADAPTER_PULL_DIR": str(tmp_path / f"{name}-pull")}


def test_a_key_the_ehr_does_not_know_is_one_clear_error(
        tmp_path: Path, ehr: Ehr, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.pem"
    create_key(other, "ES384")  # the type registered (sekmet fails with 500 on another)
    for name, value in _env(tmp_path, ehr, "a.db", other).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as done:
        main(["pull"])
    said = capsys.readouterr().err.strip().splitlines()
    assert done.value.code == 1
    assert len(said) == 1 and said[0].startswith("error: ") and "invalid_client" in said[0]
    assert "BEGIN" not in said[0]  # no key material in the answer


def _versions(url: str) -> tuple[int, int, int]:
    """(resources, versions kept, highest version) of the store."""
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(sqlalchemy.text(
            "SELECT (SELECT count(*) FROM resource), (SELECT count(*) FROM resource_version),"
            " (SELECT max(version) FROM resource)")).one()
    engine.dispose()
    return int(row[0]), int(row[1]), int(row[2])


def test_kill_9_during_the_pull_then_pull_again_equals_one_pull(tmp_path: Path, ehr: Ehr) -> None:
    ehr.seed(PARTICIPANT_FILES)
    env = {**os.environ, **_env(tmp_path, ehr, "killed.db")}
    command = [sys.executable, "-c", "from fhir_adapter.cli import main; main()", "pull"]
    pull_dir = Path(env["FHIR_ADAPTER_PULL_DIR"])
    process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not any(pull_dir.glob("*/output-*")):  # the first file is down: downloading
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    killed = Pipeline.from_settings(Settings(database_url=env["FHIR_ADAPTER_DATABASE_URL"]))
    with killed.store.read() as unit:
        assert unit.pull_job(ehr.base) is not None  # the export to resume from
    killed.store.close()
    again = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr
    assert "(resumed)" in again.stdout
    resumed = Pipeline.from_settings(Settings(database_url=env["FHIR_ADAPTER_DATABASE_URL"],
                                              pseudonym_key=KEY))
    once = Pipeline.from_settings(Settings(database_url=f"sqlite:///{tmp_path / 'once.db'}",
                                           pseudonym_key=KEY))
    once.ingest_paths(PARTICIPANT_FILES)
    assert normalise_bundle(resumed.result_bundle())["entry"] == \
        normalise_bundle(once.result_bundle())["entry"]
    with resumed.store.read() as unit:
        assert unit.pull_job(ehr.base) is None
    resources, versions, highest = _versions(env["FHIR_ADAPTER_DATABASE_URL"])
    assert resources == versions == 823 + 5 + 5 + 5 + 1  # Obs, Patient, RS, MA, Specimen
    assert highest == 1  # nothing stored twice
    resumed.store.close()
    once.store.close()


def test_a_patient_level_export_keeps_what_the_roster_enrolls(
        tmp_path: Path, ehr: Ehr, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """sekmet's Patient/$export carries no ResearchSubject: the roster decides, and pull says
    so. Two of the five participants are on the roster; only their data are kept."""
    ehr.seed(PARTICIPANT_FILES)
    for name, value in _env(tmp_path, ehr, "roster.db").items():
        monkeypatch.setenv(name, value)
    roster = tmp_path / "roster.csv"
    roster.write_text("identifier,subject\n"
                      f"{MRN}|13200001,FSGS-01\n"
                      f"{MRN}|{_mrn(PARTICIPANT_FILES[4])},FSGS-05\n", encoding="utf-8")
    with pytest.raises(SystemExit) as done:
        main(["enroll", "--from", str(roster)])
    assert done.value.code == 0
    with pytest.raises(SystemExit) as done:
        main(["pull", "--patient-level"])
    said = capsys.readouterr().out
    assert done.value.code == 0, said
    assert "carried no ResearchSubject" in said and "roster" in said
    pipeline = Pipeline.from_settings(Settings())
    records = {r.participant.subject: len(r.measurements) for r in pipeline.records()}
    pipeline.store.close()
    assert records == {"FSGS-01": 172, "FSGS-05": 167}  # their Observations in the samples


def test_a_roster_row_that_is_wrong_is_named_and_nothing_is_enrolled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FHIR_ADAPTER_DATABASE_URL", f"sqlite:///{tmp_path / 'r.db'}")
    roster = tmp_path / "roster.csv"
    roster.write_text(f"identifier,subject\n{MRN}|1,S-1\n13200002,S-2\n", encoding="utf-8")
    with pytest.raises(SystemExit) as done:
        main(["enroll", "--from", str(roster)])
    assert done.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {roster}: line 3: identifier '13200002' is not SYSTEM|VALUE")
    pipeline = Pipeline.from_settings(Settings())
    assert pipeline.records() == []
    pipeline.store.close()


def _mrn(path: Path) -> str:
    bundle = json.loads(path.read_text(encoding="utf-8"))
    patient = bundle["entry"][0]["resource"]
    return str(next(i["value"] for i in patient["identifier"] if i["system"] == MRN))
