"""A second delivery after new data: only what changed differs, LBSEQ of the old rows kept;
and the command line's answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhir_adapter.cli import main
from fhir_adapter.pipeline import Pipeline
from fhir_adapter.settings import Settings
from tests.sdtm.sdtm_expected import PLAN, SAMPLES, STUDY


def _lb(folder: Path) -> dict[tuple[str, int], dict[str, Any]]:
    document = json.loads((folder / "lb.json").read_text())
    names = [c["name"] for c in document["columns"]]
    rows = [dict(zip(names, r, strict=True)) for r in document["rows"]]
    keyed = {(r["USUBJID"], r["LBSEQ"]): r for r in rows}
    assert len(keyed) == len(rows)  # LBSEQ unique per subject
    return keyed


def test_new_data_changes_only_its_rows_and_keeps_lbseq(tmp_path: Path) -> None:
    pipeline = Pipeline.from_settings(Settings(database_url=f"sqlite:///{tmp_path / 's.db'}"))
    try:
        first = [SAMPLES / name for name in PLAN["files"] if name != "zz-corrections.json"]
        assert pipeline.ingest_paths(first).errors == []
        pipeline.export_sdtm(tmp_path / "one", "dataset-json")
        assert pipeline.ingest_paths([SAMPLES / "zz-corrections.json"]).errors == []
        pipeline.export_sdtm(tmp_path / "two", "dataset-json")
        pipeline.export_sdtm(tmp_path / "three", "dataset-json")
    finally:
        pipeline.store.close()
    one, two = _lb(tmp_path / "one"), _lb(tmp_path / "two")
    assert _lb(tmp_path / "three") == two  # the same data, the same delivery
    gone = set(one) - set(two)
    changed = {k for k in set(one) & set(two) if one[k] != two[k]}
    assert set(two) - set(one) == set()
    # the withdrawn M12 24 h protein of FSGS-02 leaves; nothing else does
    assert [(one[k]["USUBJID"], one[k]["LBTESTCD"], one[k]["VISIT"]) for k in gone] == \
        [(f"{STUDY}-FSGS-02", "PROT", "MONTH 12")]
    # the amended W2 creatinine of FSGS-01 and the eGFR computed from it change, in place
    assert sorted((two[k]["LBTESTCD"], two[k]["VISIT"], two[k]["LBDRVFL"], one[k]["LBSTRESN"],
                   two[k]["LBSTRESN"]) for k in changed) == [
        ("CREAT", "WEEK 2", None, "0.54", "0.47"),
        ("GFRBSA", "WEEK 2", "Y", "97.8", "112.4"),  # 0.413 x 127.9 cm / 0.54, then / 0.47
    ]
    assert {k[0] for k in changed} == {f"{STUDY}-FSGS-01"}


def test_an_unknown_format_is_one_line_and_exit_2(tmp_path: Path, monkeypatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FHIR_ADAPTER_DATABASE_URL", f"sqlite:///{tmp_path / 's.db'}")
    with pytest.raises(SystemExit) as done:
        main(["export", "sdtm", "--out", str(tmp_path / "out"), "--format", "sas7bdat"])
    assert done.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "sas7bdat" in lines[0] and "dataset-json" in lines[0]
    assert not (tmp_path / "out").exists()


def test_the_command_writes_every_domain(tmp_path: Path, monkeypatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FHIR_ADAPTER_DATABASE_URL", f"sqlite:///{tmp_path / 's.db'}")
    with pytest.raises(SystemExit) as done:
        main(["ingest", *[str(SAMPLES / name) for name in PLAN["files"]]])
    assert done.value.code == 0
    with pytest.raises(SystemExit) as done:
        main(["export", "sdtm", "--out", str(tmp_path / "out"), "--format", "ndjson"])
    assert done.value.code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "define.xml", "dm.ndjson", "ex.ndjson", "lb.ndjson", "metadata.json", "sv.ndjson",
        "tv.ndjson"]
    assert "(5 rows)" in capsys.readouterr().out


def _export_rows(url: str, folder: Path) -> dict[str, list[list[Any]]]:
    pipeline = Pipeline.from_settings(Settings(database_url=url))
    try:
        assert pipeline.ingest_paths([SAMPLES / name for name in PLAN["files"]]).errors == []
        pipeline.export_sdtm(folder, "ndjson")
    finally:
        pipeline.store.close()
    return {name: [json.loads(line) for line in (folder / f"{name}.ndjson").read_text()
                   .splitlines()[1:]] for name in ("dm", "lb", "ex", "sv", "tv")}


@pytest.mark.postgres
def test_postgresql_and_sqlite_give_the_same_datasets(tmp_path: Path, postgres_url: str) -> None:
    lite = _export_rows(f"sqlite:///{tmp_path / 's.db'}", tmp_path / "lite")
    pg = _export_rows(postgres_url, tmp_path / "pg")
    lb_names = [c["name"] for c in json.loads(
        (tmp_path / "lite" / "lb.ndjson").read_text().splitlines()[0])["columns"]]
    seq = lb_names.index("LBSEQ")
    # the pseudonym key is each store's own: LBSEQ differs, everything else is the same
    for rows in (lite["lb"], pg["lb"]):
        for row in rows:
            row[seq] = None
    assert sorted(map(json.dumps, pg["lb"])) == sorted(map(json.dumps, lite["lb"]))
    for name in ("dm", "ex", "sv", "tv"):
        assert pg[name] == lite[name], name
    assert any(row[lb_names.index("LBORNRHI")] == "35" for row in lite["lb"])
