"""The participants overview: one row per participant, in full width (CSV, JSON) or short."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fhir_adapter.trial.visits import BASELINE
from fhir_adapter.workspace.snapshot import ParticipantView, Snapshot

__all__ = ["SUMMARY_FIELDS", "latest_values", "overview", "overview_row"]

#: The fields of a row besides the latest value of each analyte.
SUMMARY_FIELDS = ("subject", "status", "sex", "age_at_day0", "day0", "visits_with_value",
                  "visits_missed", "missed_visits", "values_out_of_window",
                  "results_not_computed")


def latest_values(snapshot: Snapshot, view: ParticipantView) -> dict[str, str]:
    """Analyte -> its latest counting value (with comparator), for analytes that have one."""
    latest: dict[str, Any] = {}
    for m in view.record.measurements:
        if m.counts and (m.analyte not in latest or m.at >= latest[m.analyte].at):
            latest[m.analyte] = m
    return {a: f"{latest[a].comparator or ''}{snapshot.number(latest[a].value)}"
            for a in snapshot.catalogue.analytes if a in latest}


def overview_row(snapshot: Snapshot, view: ParticipantView) -> dict[str, Any]:
    assignment = view.assignment
    day0 = snapshot.day0_date(view)
    row: dict[str, Any] = {
        "subject": view.subject, "status": view.status, "sex": view.record.participant.sex or "",
        "age_at_day0": snapshot.age_at_day0(view), "day0": day0.isoformat() if day0 else None,
        "visits_with_value": None, "visits_missed": None, "missed_visits": [],
        "values_out_of_window": None, "results_not_computed": view.fault,
    }
    if assignment is not None:
        present = {v for a in assignment.placements for v in assignment.visits(a)}
        missed = {v for codes in assignment.missed.values() for v in codes} - present
        order = [v.code for v in snapshot.study.visits]
        row["visits_with_value"] = len(present - {BASELINE})
        row["visits_missed"] = len(missed)
        row["missed_visits"] = [v for v in order if v in missed]
        row["values_out_of_window"] = sum(
            1 for ps in assignment.placements.values() for p in ps
            if p.window is None and p.offset >= timedelta(0))
    row["latest"] = latest_values(snapshot, view)
    return row


def overview(snapshot: Snapshot) -> list[dict[str, Any]]:
    return [overview_row(snapshot, view) for view in snapshot.participants]
