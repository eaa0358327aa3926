"""The tables the command line prints: load summary, participants, endpoints per participant."""

from __future__ import annotations

from decimal import Decimal

from rich.table import Table

from fhir_adapter.pipeline import LoadSummary, Pipeline
from fhir_adapter.pipeline.workspace_access import workspace_of
from fhir_adapter.trial.model import ParticipantEndpoints, VisitResult
from fhir_adapter.workspace.overview import overview

__all__ = ["NOT_KEPT_BEFORE", "endpoint_tables", "participants_table", "summary_table"]

#: What an enrollment after the data means (INTERFACES.md, "Enrollment after the data").
NOT_KEPT_BEFORE = ("Data received for a patient before their enrollment was answered and not "
                   "kept: send it again (ingest the files again, or pull --since an earlier "
                   "instant) to take it up.")

ENDPOINT_COLUMNS = ("endpoint", "analyte", "visit", "value", "unit", "baseline", "change",
                    "change %", "category")
_DIRECTION = {"D": "D (decrease)", "U": "U (increase)", "N": "N (no change)"}


def summary_table(summary: LoadSummary) -> Table:
    table = Table(title=f"Loaded {summary.files} file(s)", title_justify="left")
    for name in ("type", "read", "kept", "replaced", "unchanged", "not kept", "errors"):
        table.add_column(name, justify="left" if name in ("type", "not kept") else "right")
    for rtype, c in sorted(summary.by_type.items()):
        reasons = "; ".join(f"{n} {why}" for why, n in sorted(c.not_kept.items()))
        table.add_row(rtype, str(c.read), str(c.kept), str(c.replaced), str(c.unchanged),
                      reasons, str(c.errors))
    return table


def participants_table(pipeline: Pipeline) -> Table:
    """One row per participant: subject, status, sex, age at Day 0, Day 0, visits with a
    value, the visits missed, values out of window (``participants`` has the latest values)."""
    table = Table(title="Participants", title_justify="left", caption=NOT_KEPT_BEFORE,
                  caption_justify="left")
    for name in ("subject", "status", "sex", "age", "Day 0", "visits", "missed",
                 "out of window"):
        table.add_column(name, justify="right" if name in ("age", "visits", "out of window")
                         else "left")
    for r in overview(workspace_of(pipeline).snapshot()):
        table.add_row(r["subject"], r["status"], r["sex"], _text(r["age_at_day0"]),
                      r["day0"] or "no infusion", _text(r["visits_with_value"]),
                      " ".join(r["missed_visits"]) or _text(r["visits_missed"]),
                      _text(r["values_out_of_window"]))
    return table


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def endpoint_tables(endpoints: list[ParticipantEndpoints]) -> list[Table]:
    """Per participant: one row per visit-level result; the participant-level results below."""
    tables = []
    for participant in endpoints:
        levels = "; ".join(f"{r.code} {_plain(r.value)}" for r in participant.participant_results)
        table = Table(title=f"Endpoints of {participant.subject}", title_justify="left",
                      caption=levels or None, caption_justify="left")
        for name in ENDPOINT_COLUMNS:
            numeric = name in ("value", "baseline", "change", "change %")
            table.add_column(name, justify="right" if numeric else "left")
        for result in participant.visit_results:
            table.add_row(*visit_cells(result))
        tables.append(table)
    return tables


def visit_cells(r: VisitResult) -> tuple[str, ...]:
    """endpoint, analyte, visit, value, unit, baseline, change, change %, category."""
    baseline = "" if r.baseline is None else f"{r.baseline_comparator or ''}{_number(r.baseline)}"
    return (r.endpoint, r.analyte, r.visit, f"{r.comparator or ''}{_number(r.value)}", r.unit,
            baseline, _number(r.change), _number(r.percent_change), category(r))


def category(r: VisitResult) -> str:
    """The result's class: the remission, the CTCAE grade, or the direction of the change."""
    if r.remission:
        return r.remission
    if r.ctcae_grade is not None:
        return f"CTCAE grade {r.ctcae_grade}"
    if r.interpretation:
        return _DIRECTION.get(r.interpretation, r.interpretation)
    return ""


def _plain(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _number(value: Decimal | None) -> str:
    if value is None:
        return ""
    shown = value if value.as_tuple().exponent >= -3 else round(value, 3)  # type: ignore[operator]
    text = f"{shown.normalize():f}"
    return "0" if text in ("-0", "") else text
