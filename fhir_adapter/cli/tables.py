"""The tables the command line prints: load summary, participants, endpoints per participant."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from rich.table import Table

from fhir_adapter.pipeline import LoadSummary, Pipeline
from fhir_adapter.trial.model import ParticipantEndpoints, ParticipantRecord, VisitResult
from fhir_adapter.trial.visits import BASELINE, assign_visits, study_date

__all__ = ["endpoint_tables", "participants_table", "summary_table"]

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


def participants_table(pipeline: Pipeline, records: list[ParticipantRecord]) -> Table:
    """One row per participant: subject, age at Day 0, Day 0, latest values, visits."""
    catalogue = pipeline.mapper.catalogue
    present = [a for a in catalogue.analytes
               if any(m.analyte == a for r in records for m in r.measurements)]
    table = Table(title="Participants", title_justify="left")
    for name in ("subject", "age", "Day 0"):
        table.add_column(name)
    for key in present:
        analyte = catalogue.analytes[key]
        table.add_column(f"{key}\n{analyte.unit}", justify="right")
    for name in ("visits", "missed", "out of window"):
        table.add_column(name, justify="right")
    for record in records:
        table.add_row(*_row(pipeline, record, present))
    return table


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


def _row(pipeline: Pipeline, record: ParticipantRecord, analytes: list[str]) -> list[str]:
    study = pipeline.study
    day0 = record.day0
    day0_date = study_date(day0.at, study) if day0 else None
    birth = record.participant.birth_date
    age = _age(birth, day0_date) if birth and day0_date else None
    latest = [_latest(record, a) for a in analytes]
    visits = missed = outside = "-"
    if day0 is not None:
        assignment = assign_visits(record.measurements, day0, study)
        with_value = {v for a in assignment.placements for v in assignment.visits(a)}
        missed_codes = {v for codes in assignment.missed.values() for v in codes} - with_value
        out_count = sum(1 for ps in assignment.placements.values() for p in ps
                        if p.window is None and p.offset.total_seconds() >= 0)
        visits, missed, outside = str(len(with_value - {BASELINE})), str(len(missed_codes)), \
            str(out_count)
    return [record.participant.subject, "-" if age is None else str(age),
            day0_date.isoformat() if day0_date else "no infusion", *latest, visits, missed,
            outside]


def _latest(record: ParticipantRecord, analyte: str) -> str:
    values = [m for m in record.measurements if m.analyte == analyte and m.counts]
    if not values:
        return ""
    m = max(values, key=lambda v: v.at)
    return f"{m.comparator or ''}{_number(m.value)}"


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
