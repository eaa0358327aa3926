"""Loading files from disk: NDJSON line by line, and folders that hold more than FHIR."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fhir_adapter.cli import main
from fhir_adapter.pipeline import LoadSummary, Pipeline, parallel
from fhir_adapter.settings import Settings
from tests.builders import MRN, creatinine, infusion, patient

PATIENT_REF = "Patient/p1"


@pytest.fixture
def pipeline(store_url: str) -> Iterator[Pipeline]:
    p = Pipeline.from_settings(Settings(database_url=store_url, bulk_workers=0))
    p.enroll(MRN, "1001", "S-01")
    yield p
    p.store.close()


def _answers(summary: LoadSummary) -> list[tuple[str | None, int | None, str]]:
    return [(e.where.file, e.where.line, e.line()) for e in summary.errors]


def _export_lines(values: list[float]) -> list[str]:
    """A bulk export as an EHR writes it: ids, and references of the form Type/id."""
    pat = patient() | {"id": "p1"}
    given = infusion() | {"id": "ma1", "subject": {"reference": PATIENT_REF}}
    lines = [json.dumps(pat), json.dumps(given)]
    for n, value in enumerate(values):
        obs = creatinine(f"L{n}", value, subject=PATIENT_REF) | {"id": f"o{n}"}
        lines.append(json.dumps(obs))
    return lines


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _creatinine(p: Pipeline) -> list[Decimal]:
    return sorted(m.value for r in p.records() for m in r.measurements
                  if m.analyte == "creatinine")


def _bad(obs: dict[str, Any]) -> dict[str, Any]:
    """The same Observation with a unit no creatinine can be converted from."""
    obs["valueQuantity"] |= {"unit": "g", "code": "g"}
    return obs


def test_a_refused_line_goes_alone_and_the_rest_is_kept(pipeline: Pipeline,
                                                         tmp_path: Path) -> None:
    lines = _export_lines([88.4, 176.8])
    lines.insert(3, json.dumps(_bad(creatinine("LX", 5, subject=PATIENT_REF) | {"id": "ox"})))
    path = _write(tmp_path / "export.ndjson", lines)
    summary = pipeline.ingest_paths([path], sender="h1")
    # 88.4 umol/L / 88.4 = 1 mg/dL; 176.8 / 88.4 = 2 mg/dL
    assert _creatinine(pipeline) == [Decimal("1"), Decimal("2")]
    assert [(e.where.file, e.where.line) for e in summary.errors] == [(str(path), 4)]
    assert "g" in summary.errors[0].message
    assert summary.by_type["Observation"].kept == 2
    assert summary.by_type["Observation"].errors == 1
    assert summary.exit_code == 1


def test_the_same_file_twice_changes_nothing(pipeline: Pipeline, tmp_path: Path) -> None:
    path = _write(tmp_path / "export.ndjson", _export_lines([88.4, 176.8, 44.2]))
    pipeline.ingest_paths([path], sender="h1")
    before = pipeline.store.row_counts()
    again = pipeline.ingest_paths([path], sender="h1")
    after = pipeline.store.row_counts()
    assert after.pop("audit") > before.pop("audit")  # the second load is audited ...
    assert after == before  # ... and stores nothing else
    assert again.by_type["Observation"].unchanged == 3 and again.errors == []


def test_a_broken_line_is_named_and_reading_goes_on(pipeline: Pipeline, tmp_path: Path) -> None:
    lines = _export_lines([88.4, 176.8])
    lines.insert(3, '{"resourceType": "Observation", "status": ')  # cut off mid-line
    lines.insert(5, '["not", "a", "resource"]')
    path = _write(tmp_path / "export.ndjson", lines)
    summary = pipeline.ingest_paths([path], sender="h1")
    assert _creatinine(pipeline) == [Decimal("1"), Decimal("2")]
    assert [e.where.line for e in summary.errors] == [4, 6]
    assert summary.errors[0].message.startswith("not JSON")
    assert summary.errors[1].message.startswith("not a FHIR resource")
    assert summary.exit_code == 2


def test_the_command_line_names_file_and_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FHIR_ADAPTER_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    lines = _export_lines([88.4])
    lines.insert(2, "{oops")
    path = _write(tmp_path / "export.ndjson", lines)
    with pytest.raises(SystemExit) as done:
        main(["enroll", "--identifier", f"{MRN}|1001", "--subject", "S-01"])
    assert done.value.code in (0, None)
    with pytest.raises(SystemExit) as done:
        main(["ingest", str(path)])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert f"error: {path}: line 3: not JSON" in err
    assert "Traceback" not in err


def test_a_folder_walk_leaves_json_that_is_not_fhir(tmp_path: Path) -> None:
    p = Pipeline.from_settings(Settings(database_url=f"sqlite:///{tmp_path / 'w.db'}"))
    p.enroll(MRN, "1001", "S-01")
    folder = tmp_path / "drop"
    folder.mkdir()
    _write(folder / "a.ndjson", _export_lines([88.4]))
    (folder / "notes.json").write_text(json.dumps({"files": ["a.ndjson"]}), encoding="utf-8")
    summary = p.ingest_paths([folder], sender="h1")
    assert summary.errors == [] and summary.exit_code == 0 and summary.files == 1
    assert [(s.where.file, s.message) for s in summary.skipped] == [
        (str(folder / "notes.json"), "not a FHIR resource (no resourceType)")]
    assert _creatinine(p) == [Decimal("1")]
    # named on its own, the same file is an error: the caller asked for it
    named = p.ingest_paths([folder / "notes.json"], sender="h1")
    assert named.exit_code == 2 and named.skipped == []
    p.store.close()


def test_ingest_of_the_sample_folder_skips_the_plan(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FHIR_ADAPTER_DATABASE_URL", f"sqlite:///{tmp_path / 's.db'}")
    folder = Path(__file__).resolve().parents[2] / "sample_bundles"
    with pytest.raises(SystemExit) as done:
        main(["ingest", str(folder)])
    assert done.value.code in (0, None)
    err = capsys.readouterr().err
    assert f"skipped: {folder / 'plan.json'}: not a FHIR resource" in err
    assert "error:" not in err


def _mixed_export(tmp_path: Path) -> Path:
    """Good lines, a line a profile refuses, a broken line, a Patient: every kind of answer."""
    lines = _export_lines([88.4, 176.8, 44.2])
    lines.insert(3, json.dumps(_bad(creatinine("LX", 5, subject=PATIENT_REF) | {"id": "ox"})))
    lines.insert(5, "{oops")
    lines.append(json.dumps(patient("1002") | {"id": "p2"}))  # not enrolled: not kept
    return _write(tmp_path / "export.ndjson", lines)


def _load(tmp_path: Path, name: str, path: Path, *, workers_from: Settings | None = None,
          **settings: Any) -> tuple[LoadSummary, list]:
    p = Pipeline.from_settings(Settings(database_url=f"sqlite:///{tmp_path / name}", **settings))
    if workers_from is not None:  # the workers build their validator from these
        p.settings = workers_from
    p.enroll(MRN, "1001", "S-01")
    summary = p.ingest_paths([path], sender="h1")
    values = _creatinine(p)
    p.store.close()
    return summary, values


def test_validating_workers_change_nothing_but_speed(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = _mixed_export(tmp_path)
    alone, alone_values = _load(tmp_path, "alone.db", path, bulk_workers=0)
    monkeypatch.setattr(parallel, "MIN_BYTES", 0)  # a small file goes to the workers too
    monkeypatch.setattr(parallel, "BATCH_LINES", 2)  # several batches in flight
    pooled, pooled_values = _load(tmp_path, "pooled.db", path, bulk_workers=1)
    # 88.4, 176.8, 44.2 umol/L / 88.4 = 1, 2, 0.5 mg/dL
    assert alone_values == pooled_values == [Decimal("0.5"), Decimal("1"), Decimal("2")]
    assert _answers(pooled) == _answers(alone)
    assert [e.where.line for e in pooled.errors] == [4, 6]
    assert pooled.by_type == alone.by_type
    assert pooled.by_type["Patient"].not_kept


def test_workers_that_cannot_start_leave_the_work_to_the_writer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _mixed_export(tmp_path)
    alone, _ = _load(tmp_path, "alone.db", path, bulk_workers=0)
    monkeypatch.setattr(parallel, "MIN_BYTES", 0)
    with parallel.Prevalidator(Settings(mappings_dir=tmp_path / "missing"), 1) as pool:
        verdicts = [ok for _, _, ok in pool.lines(iter([(1, b"{}"), (2, b"{}")]))]
    assert verdicts == [False, False] and pool.broken
    # workers that die while the pipeline loads a file: every line is validated here instead
    broken = Settings(mappings_dir=tmp_path / "missing", bulk_workers=1)
    fallback, values = _load(tmp_path, "fallback.db", path, workers_from=broken)
    assert values == [Decimal("0.5"), Decimal("1"), Decimal("2")]
    assert _answers(fallback) == _answers(alone)
