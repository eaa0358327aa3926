"""A value the endpoint arithmetic cannot hold poisons nothing: values too large or too precise
for the store and the endpoint arithmetic are refused at the door, whatever the way in; and a
recomputation that fails all the same (a value stored by some other path) marks that participant
with the reason, while the others are recomputed and the store opens as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import InvalidOperation
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from fhir_adapter.pipeline import Pipeline
from fhir_adapter.pipeline.workspace_access import workspace_of
from fhir_adapter.publication import recompute as recompute_module
from fhir_adapter.settings import Settings
from fhir_adapter.store.schema import measurement
from fhir_adapter.workspace import queries
from tests.builders import creatinine, entry, infusion, patient, research_subject, transaction

KEY = "k" * 32
EXE = Path(sys.executable).with_name("fhir-adapter")
#: what the issue's fuzzing sent: each answered 500 or poisoned the queue
HOSTILE = (1e300, 1e-300, 3.4028235e38, 1.7976931348623157e308)


def _participant(n: int, *observations: dict[str, Any]) -> dict[str, Any]:
    """Participant S-0n (MRN 100n), infused, with these Observations (their subject set)."""
    url = f"urn:uuid:5f0e6a52-1f53-4c44-9d4a-0c1b3c2d4{n:03d}"
    entries = [entry(patient(f"100{n}"), url),
               entry(research_subject(f"S-0{n}", individual=url),
                     f"urn:uuid:6f0e6a52-1f53-4c44-9d4a-0c1b3c2d4{n:03d}")]
    given = infusion()
    given["identifier"][0]["value"] = f"MA-{n}"
    given["subject"] = {"reference": url}
    entries.append(entry(given, f"urn:uuid:7f0e6a52-1f53-4c44-9d4a-0c1b3c2d4{n:03d}"))
    for i, obs in enumerate(observations):
        obs["subject"] = {"reference": url}
        entries.append(entry(obs, f"urn:uuid:8f0e6a52-1f53-4c44-9d4a-{n:06d}{i:06d}"))
    return transaction(*entries)


def _open(url: str) -> Pipeline:
    """Implausible values kept with a warning: what is left to refuse them is their size."""
    return Pipeline.from_settings(Settings(database_url=url, bulk_workers=0, pseudonym_key=KEY,
                                           implausible_values="warn"))


@pytest.fixture
def two(store_url: str) -> Iterator[Pipeline]:
    """S-01 and S-02, each with a baseline and a Day 14 creatinine."""
    pipeline = _open(store_url)
    for n in (1, 2):
        bundle = _participant(n, creatinine(f"B{n}", 50, at="2024-03-09T08:00:00+03:30"),
                              creatinine(f"D{n}", 60))
        assert {e.status for e in pipeline.process_bundle(bundle, sender="h").entries} == {201}
    yield pipeline
    pipeline.store.close()


def _results(pipeline: Pipeline, subject: str) -> dict[str, tuple[str, int]]:
    with pipeline.store.read() as unit:
        return {r.key: (r.status, r.version) for r in unit.results(subject=subject)}


def _line(path: Path, resource: dict[str, Any]) -> Path:
    path.write_text(json.dumps(resource) + "\n")
    return path


def _patient_id(pipeline: Pipeline, subject: str) -> str:
    with pipeline.store.read() as unit:
        found = unit.participant(subject)
    assert found is not None and found.patient_id
    return found.patient_id


def _poison(pipeline: Pipeline, subject: str, value: str) -> None:
    """The Day 14 creatinine of ``subject`` set to ``value`` behind the adapter's back (a store
    written before the door refused such values), and the participant queued."""
    with pipeline.store.transaction() as unit:
        latest = unit.conn.execute(select(measurement.c.resource_id).where(
            measurement.c.subject == subject).order_by(measurement.c.at.desc())).scalars().first()
        unit.conn.execute(update(measurement).where(measurement.c.resource_id == latest)
                          .values(value=value))
        unit.mark_stale([subject])


# -- the door ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value", HOSTILE)
def test_an_ndjson_correction_the_store_cannot_hold_is_refused_at_its_line(
        two: Pipeline, tmp_path: Path, value: float) -> None:
    before = _results(two, "S-01")
    correction = creatinine("D1", value, subject=f"Patient/{_patient_id(two, 'S-01')}")
    summary = two.ingest_paths([_line(tmp_path / "c.ndjson", correction)], sender="h")
    [error] = summary.errors
    assert error.where.line == 1
    assert error.where.element == "Observation.valueQuantity.value"
    assert "decimal" in error.message
    assert _results(two, "S-01") == before  # nothing changed, nothing queued
    with two.store.read() as unit:
        assert unit.stale_subjects() == [] and unit.recompute_faults() == {}


# -- a recomputation that fails -------------------------------------------------------------
def test_a_stored_value_beyond_the_door_blocks_nothing(two: Pipeline, tmp_path: Path) -> None:
    """A store written before the door may hold 1e300: every participant is recomputed."""
    _poison(two, "S-01", "1E+300")
    correction = creatinine("D2", 70, subject=f"Patient/{_patient_id(two, 'S-02')}")
    summary = two.ingest_paths([_line(tmp_path / "c.ndjson", correction)], sender="h")
    assert summary.errors == []
    for subject in ("S-01", "S-02"):
        assert "amended" in {status for status, _ in _results(two, subject).values()}
    with two.store.read() as unit:
        assert unit.stale_subjects() == [] and unit.recompute_faults() == {}


@pytest.fixture
def failing_s01(monkeypatch: pytest.MonkeyPatch) -> None:
    """The endpoint computation of S-01 raises as a value beyond the arithmetic made it raise
    before the door and the rounding held such values (a fault no input can make now)."""
    real = recompute_module.compute

    def compute(record: Any, *args: Any) -> Any:
        if record.participant.subject == "S-01":
            raise InvalidOperation([InvalidOperation])
        return real(record, *args)

    monkeypatch.setattr(recompute_module, "compute", compute)


FAULT = ("results not computed: the endpoint arithmetic failed (InvalidOperation); they stay "
         "as they were until the data change")


def test_a_failing_recompute_marks_its_participant_and_spares_the_others(
        two: Pipeline, tmp_path: Path, store_url: str, failing_s01: None) -> None:
    s1_before = _results(two, "S-01")
    with two.store.transaction() as unit:
        unit.mark_stale(["S-01"])  # queued by a load that stopped
    # S-02's Day 14 value corrected in an NDJSON line: S-02 is recomputed, S-01 is marked
    correction = creatinine("D2", 70, subject=f"Patient/{_patient_id(two, 'S-02')}")
    summary = two.ingest_paths([_line(tmp_path / "c.ndjson", correction)], sender="h")
    assert summary.errors == []
    assert "amended" in {status for status, _ in _results(two, "S-02").values()}
    assert _results(two, "S-01") == s1_before  # kept as they were, not withdrawn
    with two.store.read() as unit:
        assert unit.recompute_faults() == {"S-01": FAULT}
        assert unit.stale_subjects() == []  # the marked participant blocks no claim

    # opening the store again, as every command and the server do, takes up the queue and ends
    reopened = _open(store_url)
    try:
        assert reopened.recompute_stale().changed == []
        workspace = workspace_of(reopened)
        found = [q for q in queries(workspace.snapshot(), workspace.rules)
                 if q.kind == "not-computed"]
        assert [(q.subject, q.reason) for q in found] == [("S-01", FAULT)]
        assert reopened.result_bundle()["type"] == "collection"  # the others are published
    finally:
        workspace_of(reopened).stop_warming()
        reopened.store.close()


def test_a_rest_write_whose_recompute_fails_is_kept_and_marked(
        two: Pipeline, failing_s01: None) -> None:
    """The recomputation in the write's own transaction: the write stands, S-01 is marked."""
    fixed = creatinine("D1", 65, subject=f"Patient/{_patient_id(two, 'S-01')}")
    assert two.process_resource(fixed, sender="h").status == 200
    with two.store.read() as unit:
        assert unit.recompute_faults() == {"S-01": FAULT}


def test_a_correction_clears_the_mark(two: Pipeline, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, failing_s01: None) -> None:
    with two.store.transaction() as unit:
        unit.mark_stale(["S-01"])
    assert two.recompute_stale().faults == {"S-01": FAULT}
    monkeypatch.undo()  # the fault is gone; the participant's data change
    fixed = creatinine("D1", 65, subject=f"Patient/{_patient_id(two, 'S-01')}")
    summary = two.ingest_paths([_line(tmp_path / "D1.ndjson", fixed)], sender="h")
    assert summary.errors == []
    with two.store.read() as unit:
        assert unit.recompute_faults() == {} and unit.stale_subjects() == []
    assert "amended" in {status for status, _ in _results(two, "S-01").values()}


def _commands(tmp_path: Path, db: Path) -> dict[str, str]:
    """Every reading command over the store: each exits 0 with no traceback; their output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_ADAPTER_")}
    env.update(FHIR_ADAPTER_DATABASE_URL=f"sqlite:///{db}", FHIR_ADAPTER_PSEUDONYM_KEY=KEY)
    shown = {}
    for command in (["participants"], ["participants", "--format", "json"], ["queries"],
                    ["results", "--out", str(tmp_path / "r.json")], ["outbox"],
                    ["visits", "--analyte", "creatinine"], ["visits"], ["dataset"],
                    ["endpoints", "S-01"], ["endpoints", "S-02"], ["results", "--format", "csv"],
                    ["export", "sdtm", "--out", str(tmp_path / "sdtm")]):
        done = subprocess.run([str(EXE), *command], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=300, check=False)
        assert done.returncode == 0, (command, done.stderr[-3000:])
        assert "Traceback" not in done.stderr
        shown[" ".join(command[:3])] = done.stdout
    return shown


def _two_in_file(db: Path) -> Pipeline:
    pipeline = _open(f"sqlite:///{db}")
    for n in (1, 2):
        bundle = _participant(n, creatinine(f"B{n}", 50, at="2024-03-09T08:00:00+03:30"),
                              creatinine(f"D{n}", 60))
        pipeline.process_bundle(bundle, sender="h")
    return pipeline


def test_every_command_works_beside_a_stored_1e300(tmp_path: Path) -> None:
    pipeline = _two_in_file(tmp_path / "adapter.db")
    _poison(pipeline, "S-01", "1E+300")
    pipeline.recompute_stale()  # as the end of any load does
    pipeline.store.close()
    shown = _commands(tmp_path, tmp_path / "adapter.db")
    assert "1e+300" in shown["visits --analyte creatinine"]


def test_participants_and_queries_name_the_fault(tmp_path: Path, failing_s01: None) -> None:
    pipeline = _two_in_file(tmp_path / "adapter.db")
    with pipeline.store.transaction() as unit:
        unit.mark_stale(["S-01"])
    pipeline.recompute_stale()
    pipeline.store.close()
    shown = _commands(tmp_path, tmp_path / "adapter.db")
    assert f"S-01: {FAULT}"[:90] in shown["participants"]
    assert "S-01" in shown["queries"] and "results not computed" in shown["queries"]
    marks = {r["subject"]: r["results_not_computed"]
             for r in json.loads(shown["participants --format json"])}
    assert marks == {"S-01": FAULT, "S-02": None}
