"""The workspace over the five sample participants: grid and queries against what
plan.json gives by the rules written again in plan_rules."""

from __future__ import annotations

from datetime import datetime

from fhir_adapter.pipeline import Pipeline
from fhir_adapter.pipeline.workspace_access import workspace_of
from fhir_adapter.workspace import grid, queries
from tests.workspace.plan_rules import PLAN, missed, outside, safety

PARTICIPANTS = {p["subject"]: p for p in PLAN["participants"]}


def test_the_queries_list_is_what_the_plan_gives(sample_pipeline: Pipeline) -> None:
    workspace = workspace_of(sample_pipeline)
    found = queries(workspace.snapshot(), workspace.rules)
    # values outside every window: subject, analyte, time
    expected_outside = sorted((s, v["analyte"], datetime.fromisoformat(v["time"]))
                              for s, p in PARTICIPANTS.items() for v in outside(p))
    assert len(expected_outside) == 9  # FSGS-05's M5, drawn on day 160
    got_outside = sorted((q.subject, q.analyte, q.at) for q in found if q.kind == "out-of-window")
    assert got_outside == expected_outside
    assert all("nearest visit M5" in q.reason for q in found if q.kind == "out-of-window")
    # missed visits: one query per participant and visit, naming the analytes
    expected_missed = {(s, visit): analytes for s, p in PARTICIPANTS.items()
                       for visit, analytes in missed(p).items()}
    got_missed = {(q.subject, q.visit): set(q.analyte.split(",")) for q in found
                  if q.kind == "missed"}
    assert got_missed == expected_missed
    assert ("FSGS-04", "M7") in got_missed and ("FSGS-05", "M5") in got_missed
    # safety signals
    expected_safety = sorted((s, a, datetime.fromisoformat(t)) for s, p in PARTICIPANTS.items()
                             for a, t in safety(p))
    got_safety = sorted((q.subject, q.analyte, q.at) for q in found if q.kind == "safety")
    assert got_safety == expected_safety
    # nothing else: no preliminary, implausible, refused or not-enrolled data in the samples
    assert {q.kind for q in found} <= {"out-of-window", "missed", "safety"}


def test_the_grid_shows_missed_and_out_of_window_visits(sample_pipeline: Pipeline) -> None:
    snapshot = workspace_of(sample_pipeline).snapshot()
    rows = {r.view.subject: r for r in grid(snapshot)}
    assert rows["FSGS-04"].cells["M7"].state == "missed"
    m5 = rows["FSGS-05"].cells["M5"]
    assert m5.state == "out-of-window" and m5.text(None) == "d160"
    assert len([v for v in m5.values if v.role == "outside every window"]) == 9
    # the withdrawn M12 24 h protein of FSGS-02, and its H12 never drawn (a 24 h collection)
    protein = {r.view.subject: r for r in grid(snapshot, "urine-protein-24h")}
    assert protein["FSGS-02"].cells["M12"].state == "withdrawn"
    assert all(protein[s].cells["H12"].state == "missed" for s in PARTICIPANTS)
    # every other post-Day 0 cell of creatinine has its value, the amended one counted
    creatinine = {r.view.subject: r for r in grid(snapshot, "creatinine")}
    w2 = creatinine["FSGS-01"].cells["W2"]
    assert w2.state == "present" and str(w2.value_of("creatinine")) == "0.47"
    for subject, row in creatinine.items():
        states = {c.visit: c.state for c in row.cells.values()}
        gaps = {v for v, s in states.items() if s != "present"}
        expected = {"FSGS-04": {"M7"}, "FSGS-05": {"M5"}}.get(subject, set())
        assert gaps == expected, subject


def test_the_snapshot_is_kept_until_the_data_change(sample_pipeline: Pipeline) -> None:
    workspace = workspace_of(sample_pipeline)
    first = workspace.snapshot()
    assert workspace.snapshot() is first
    sample_pipeline.enroll("https://example.org/mrn", "X-1", "FSGS-99")
    assert workspace.snapshot() is not first
    assert workspace.snapshot().participant("FSGS-99") is not None
