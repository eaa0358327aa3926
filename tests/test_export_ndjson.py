"""NDJSON as a Bulk Data export writes it: enrollment inside the export, ``Type/id`` references
between its files, whatever the file order; and what an enrollment after the data does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fhir_adapter.cli import main
from fhir_adapter.pipeline import Pipeline
from fhir_adapter.settings import Settings
from tests.export_files import (
    CORRECTIONS,
    PARTICIPANT_FILES,
    export_resources,
    write_ndjson,
    write_per_type,
)
from tests.test_golden import KEY, normalise_bundle

SAMPLES = Path(__file__).resolve().parents[1] / "sample_bundles"
P1 = SAMPLES / "p1-FSGS-01.json"
P1_OBSERVATIONS = 172  # Observation entries of p1-FSGS-01.json (counted in the file)


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    p = Pipeline.from_settings(Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}",
                                        bulk_workers=0, pseudonym_key=KEY))
    yield p
    p.store.close()


def _one_participant() -> list[dict[str, Any]]:
    """Patient on line 1, its ResearchSubject on line 2, then its other resources."""
    resources = export_resources([P1], corrected=False)
    order = {"Patient": 0, "ResearchSubject": 1}
    return sorted(resources, key=lambda r: order.get(r["resourceType"], 2))


def test_one_file_enrolls_and_keeps_every_observation(pipeline: Pipeline,
                                                       tmp_path: Path) -> None:
    lines = _one_participant()
    assert lines[1]["individual"] == {"reference": "Patient/x000"}
    summary = pipeline.ingest_paths([write_ndjson(tmp_path / "export.ndjson", lines)])
    assert [e.line() for e in summary.errors] == []
    assert summary.by_type["Observation"].kept == P1_OBSERVATIONS
    assert summary.by_type["ResearchSubject"].kept == 1
    assert summary.by_type["Patient"].kept == 1
    [record] = pipeline.records()
    assert record.participant.subject == "FSGS-01"
    assert len(record.measurements) == P1_OBSERVATIONS


def test_enrollment_last_in_the_file_still_comes_first(pipeline: Pipeline,
                                                       tmp_path: Path) -> None:
    lines = list(reversed(_one_participant()))  # Observations, then ResearchSubject, Patient
    summary = pipeline.ingest_paths([write_ndjson(tmp_path / "export.ndjson", lines)])
    assert summary.errors == []
    assert summary.by_type["Observation"].kept == P1_OBSERVATIONS


def test_files_per_type_in_any_order_give_the_results_of_the_bundles(
        pipeline: Pipeline, tmp_path: Path) -> None:
    """The five participants exported one file per type: the result Bundle is that of their
    Bundles (normalised as the golden test does); the export made after the corrections,
    loaded next, gives that of ``ingest sample_bundles/`` (the corrections as amendments)."""
    files = write_per_type(tmp_path / "export", export_resources(corrected=False))
    assert [f.name for f in files][:3] == ["MedicationAdministration.ndjson",
                                           "Observation.ndjson", "Patient.ndjson"]
    summary = pipeline.ingest_paths([tmp_path / "export"])
    assert summary.errors == []
    assert summary.total("kept") == len(export_resources())
    assert len(pipeline.records()) == 5
    bundles = Pipeline.from_settings(Settings(database_url=f"sqlite:///{tmp_path / 'b.db'}",
                                              pseudonym_key=KEY))
    bundles.ingest_paths(PARTICIPANT_FILES)
    _same_results(pipeline, bundles)

    later = pipeline.ingest_paths(write_per_type(tmp_path / "later", export_resources()))
    assert (later.total("replaced"), later.errors) == (2, [])  # the two corrections
    bundles.ingest_paths([CORRECTIONS])
    _same_results(pipeline, bundles)
    bundles.store.close()


def _same_results(got: Pipeline, want: Pipeline) -> None:
    mine = normalise_bundle(got.result_bundle())["entry"]
    theirs = normalise_bundle(want.result_bundle())["entry"]
    assert len(mine) == len(theirs)
    assert mine == theirs


def test_loading_the_export_again_changes_nothing(pipeline: Pipeline, tmp_path: Path) -> None:
    files = write_per_type(tmp_path / "export", export_resources())
    pipeline.ingest_paths(files)
    again = pipeline.ingest_paths(files)
    assert again.errors == []
    assert again.total("kept") == again.total("replaced") == 0
    assert again.total("unchanged") == len(export_resources())


def test_an_unreadable_line_is_told_once_with_its_line(pipeline: Pipeline,
                                                       tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "export.ndjson", _one_participant())
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"resourceType": "Patient", "id": \n')
    summary = pipeline.ingest_paths([path])
    assert [(e.where.file, e.where.line) for e in summary.errors] == [
        (str(path), P1_OBSERVATIONS + 4)]
    assert summary.by_type["Observation"].kept == P1_OBSERVATIONS


def test_a_patient_enrolled_by_roster_keeps_its_data_in_any_file_order(
        pipeline: Pipeline, tmp_path: Path) -> None:
    """No ResearchSubject in the export (a Patient-level export): the roster enrolls."""
    lines = [r for r in _one_participant() if r["resourceType"] != "ResearchSubject"]
    mrn = lines[0]["identifier"][0]
    pipeline.enroll(mrn["system"], mrn["value"], "FSGS-01")
    files = write_per_type(tmp_path / "export", lines)  # Observation.ndjson before Patient
    summary = pipeline.ingest_paths(files)
    assert summary.errors == []
    assert summary.by_type["Observation"].kept == P1_OBSERVATIONS


def test_enroll_after_the_data_says_what_was_not_kept(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Data for a patient not enrolled is answered and not kept; an enrollment afterwards
    keeps what comes next and says that the earlier data must be sent again; sent again, it
    is kept."""
    monkeypatch.setenv("FHIR_ADAPTER_DATABASE_URL", f"sqlite:///{tmp_path / 'a.db'}")
    monkeypatch.setenv("FHIR_ADAPTER_BULK_WORKERS", "0")
    lines = [r for r in _one_participant() if r["resourceType"] != "ResearchSubject"]
    path = write_ndjson(tmp_path / "export.ndjson", lines)
    mrn = lines[0]["identifier"][0]
    with pytest.raises(SystemExit) as done:
        main(["ingest", str(path)])
    assert done.value.code == 0
    assert "patient not enrolled" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["enroll", "--identifier", f"{mrn['system']}|{mrn['value']}", "--subject",
              "FSGS-01"])
    said = capsys.readouterr().out
    assert done.value.code == 0
    assert "not kept" in said and "again" in said
    with pytest.raises(SystemExit):
        main(["participants"])
    table = capsys.readouterr().out
    assert "FSGS-01" in table and "again" in table
    with pytest.raises(SystemExit) as done:
        main(["ingest", str(path)])
    assert done.value.code == 0
    pipeline = Pipeline.from_settings(Settings())
    [record] = pipeline.records()
    assert len(record.measurements) == P1_OBSERVATIONS
    pipeline.store.close()


def test_a_file_of_the_export_that_cannot_be_read_is_an_error_the_others_load(
        pipeline: Pipeline, tmp_path: Path) -> None:
    good = write_ndjson(tmp_path / "export" / "a.ndjson", _one_participant())
    bad = tmp_path / "export" / "b.ndjson.gz"
    bad.write_bytes(b"not gzip at all\n")
    summary = pipeline.ingest_paths([good, bad])
    assert [e.where.file for e in summary.errors] == [str(bad)]
    assert "cannot read file" in summary.errors[0].line()
    assert summary.by_type["Observation"].kept == P1_OBSERVATIONS
