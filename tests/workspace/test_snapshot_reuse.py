"""A new snapshot computes again only the participants a write changed; what it shows is what a
snapshot made from nothing shows."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from fhir_adapter.pipeline import Pipeline
from fhir_adapter.pipeline.workspace_access import AUDIT_ROWS, audit_entry, workspace_of
from fhir_adapter.settings import Settings
from fhir_adapter.store import Unit
from fhir_adapter.workspace import Snapshot, grid
from tests.workspace.conftest import SAMPLES

CREATININE = "2160-0"


def _cells(snapshot: Snapshot, analyte: str | None) -> dict[tuple[str, str], tuple[str, str]]:
    return {(row.view.subject, visit): (c.state, c.text(analyte))
            for row in grid(snapshot, analyte) for visit, c in row.cells.items()}


def _corrected_creatinine(value: float) -> tuple[dict, float]:
    """FSGS-02's Patient entry and its last creatinine Observation with another value."""
    bundle = json.loads((SAMPLES / "p2-FSGS-02.json").read_text(encoding="utf-8"))
    patient = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    last = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
            and e["resource"]["code"]["coding"][0]["code"] == CREATININE][-1]
    entry = copy.deepcopy(last)
    old = entry["resource"]["valueQuantity"]["value"]
    entry["resource"]["valueQuantity"]["value"] = value
    return {"resourceType": "Bundle", "type": "transaction", "entry": [patient, entry]}, old


def test_a_write_computes_its_participant_again_and_keeps_the_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = Pipeline.from_settings(Settings(database_url=f"sqlite:///{tmp_path / 'ws.db'}"))
    try:
        files = [SAMPLES / f"p{n}-FSGS-0{n}.json" for n in range(1, 6)]
        assert not pipeline.ingest_paths(files, sender="cli").errors
        workspace = workspace_of(pipeline)
        first = workspace.snapshot()
        before = _cells(first, "creatinine")
        endpoints_before = {p.subject: p.endpoints for p in first.participants}

        correction, old = _corrected_creatinine(1.23)
        assert old != 1.23
        pipeline.process_bundle(correction, sender="cli")
        read: list[list[str] | None] = []
        records = Unit.records

        def spy(self: Unit, subjects: list[str] | None = None) -> object:
            read.append(None if subjects is None else list(subjects))
            return records(self, subjects)

        monkeypatch.setattr(Unit, "records", spy)
        second = workspace.snapshot()
        assert read == [["FSGS-02"]]  # the records of the others were not read again
        monkeypatch.undo()
        assert second is not first
        kept = {p.subject for p in second.participants
                if p is first.participant(p.subject)}
        assert kept == {"FSGS-01", "FSGS-03", "FSGS-04", "FSGS-05"}

        after = _cells(second, "creatinine")
        changed = {k: (before[k], after[k]) for k in after if after[k] != before.get(k)}
        assert len(changed) == 1
        (subject, _visit), (_old_cell, (state, text)) = next(iter(changed.items()))
        assert subject == "FSGS-02" and state == "present" and text == "1.23"

        # the audit as the store has it now, the correction's row first
        with pipeline.store.read() as unit:
            rows = unit.audit_rows(limit=AUDIT_ROWS)
        assert second.audit == [audit_entry(r) for r in rows]
        assert len(second.audit) == len(first.audit) + 1

        # the same as a snapshot made without the previous one, cell by cell and endpoint by
        # endpoint, for every analyte
        workspace._cached = None
        fresh = workspace.snapshot()
        assert all(fresh.participant(p.subject) is not p for p in second.participants)
        for analyte in (None, *second.catalogue.analytes):
            assert _cells(second, analyte) == _cells(fresh, analyte), analyte
        assert {p.subject: p.endpoints for p in second.participants} == \
            {p.subject: p.endpoints for p in fresh.participants}
        assert {p.subject: p.endpoints for p in second.participants if p.subject != "FSGS-02"} \
            == {s: e for s, e in endpoints_before.items() if s != "FSGS-02"}
    finally:
        workspace_of(pipeline).stop_warming()
        pipeline.store.close()


def test_a_served_app_makes_the_first_snapshot_before_any_page(tmp_path: Path) -> None:
    import time

    from fhir_adapter.api.server import served_app

    url = f"sqlite:///{tmp_path / 'ws.db'}"
    loader = Pipeline.from_settings(Settings(database_url=url))
    assert not loader.ingest_paths([SAMPLES / "p1-FSGS-01.json"], sender="cli").errors
    loader.store.close()
    app = served_app(Settings(database_url=url, tokens_file=tmp_path / "tokens.json"))
    workspace = workspace_of(app.state.pipeline)
    try:
        assert workspace.warming
        deadline = time.monotonic() + 60  # the thread looks every few seconds
        while workspace._cached is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert workspace._cached is not None, "no snapshot made in the background"
        made = workspace._cached[1]
        assert [p.subject for p in made.participants] == ["FSGS-01"]
        assert workspace.snapshot() is made  # the first page finds it made
    finally:
        workspace.stop_warming()
        app.state.pipeline.store.close()
