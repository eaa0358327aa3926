"""LB: one row per counting lab value of a participant, and the eGFR the trial computes."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from fhir_adapter.results.vocab import decimal_text
from fhir_adapter.sdtm.subject import Context, Row, SubjectData
from fhir_adapter.sdtm.timing import VisitSlot, dtc, study_day
from fhir_adapter.trial.endpoints.liver import ctcae_grade, uln_of
from fhir_adapter.trial.model import Measurement, VisitResult
from fhir_adapter.trial.visits import BASELINE, Placement, assign_visits, study_date

__all__ = ["COMPUTED_EGFR", "lb_rows"]

#: The analyte of the eGFR the trial computes (its rows come from the visit results).
COMPUTED_EGFR = "egfr-computed"


def lb_rows(ctx: Context, data: SubjectData) -> list[Row]:
    """Every counting value (final, amended, corrected) of an analyte with an LB test, in its
    visit; preliminary and withdrawn values are not in LB. Sorted by test, visit, LBSEQ."""
    record = data.record
    wanted = [m for m in record.measurements if m.analyte in ctx.terms.lab and m.counts]
    infusion = record.day0
    rows: list[Row] = []
    if infusion is None:  # no Day 0: no visit, no baseline, no study day
        rows = [_row(ctx, data, m, None, None, None) for m in wanted]
    else:
        assignment = assign_visits(wanted, infusion, ctx.study)
        placed = [p for ps in assignment.placements.values() for p in ps]
        slots = _slots(ctx, placed)
        last_before = _last_before_exposure(placed)
        day0_date = study_date(infusion.at, ctx.study)
        for p in placed:
            baseline = assignment.baseline(p.measurement.analyte)
            row = _row(ctx, data, p.measurement, slots[id(p)], day0_date, p)
            row["LBBLFL"] = "Y" if p.window == BASELINE and p.chosen else None
            row["LBLOBXFL"] = "Y" if id(p) in last_before else None
            _toxicity(ctx, row, p, baseline)
            rows.append(row)
        rows += _computed_egfr(ctx, data, assignment.baseline("creatinine"), day0_date)
    _number(ctx, rows)
    rows.sort(key=lambda r: (r["LBTESTCD"], r["VISITNUM"] is None, r["VISITNUM"] or 0,
                             r["LBDTC"], r["LBSEQ"]))
    return rows


def _slots(ctx: Context, placed: list[Placement]) -> dict[int, VisitSlot]:
    """The visit of each placed value: its protocol visit when it represents it, else the
    unscheduled visit of its calendar day."""
    days: dict[date, timedelta] = {}
    for p in placed:
        if p.window is None or not p.chosen:
            day = study_date(p.measurement.at, ctx.study)
            days[day] = min(days.get(day, p.offset), p.offset)
    unscheduled = ctx.schedule.unscheduled(days)
    return {
        id(p): ctx.schedule.slot(p.window) if p.window is not None and p.chosen
        else unscheduled[study_date(p.measurement.at, ctx.study)]
        for p in placed
    }


def _last_before_exposure(placed: list[Placement]) -> set[int]:
    latest: dict[str, Placement] = {}
    for p in placed:
        if p.offset < timedelta(0):
            best = latest.get(p.measurement.analyte)
            m = p.measurement
            if best is None or (m.at, m.source) > (best.measurement.at, best.measurement.source):
                latest[m.analyte] = p
    return {id(p) for p in latest.values()}


def _row(ctx: Context, data: SubjectData, m: Measurement, slot: VisitSlot | None,
         day0_date: date | None, p: Placement | None) -> Row:
    test = ctx.terms.lab[m.analyte]
    source = data.documents.get(m.source, {})
    found = source.get("valueQuantity")
    quantity: dict[str, Any] = found if isinstance(found, dict) else {}
    low, high = _range(source)
    comparator = m.comparator or ""
    standard = decimal_text(m.value)
    row: Row = {
        "STUDYID": ctx.studyid, "DOMAIN": "LB", "USUBJID": ctx.usubjid(data.subject),
        "LBSEQ": None, "LBTESTCD": test.testcd, "LBTEST": test.test, "LBCAT": test.cat,
        "LBORRES": comparator + _text(quantity.get("value")) if quantity else
        comparator + standard,
        "LBORRESU": ctx.terms.unit(quantity.get("code") or quantity.get("unit")) if quantity
        else ctx.terms.unit(m.unit),
        "LBORNRLO": _text(low.get("value")) or None, "LBORNRHI": _text(high.get("value")) or None,
        "LBSTRESC": comparator + standard,
        "LBSTRESN": None if m.censored else standard,
        "LBSTRESU": ctx.terms.unit(m.unit),
        "LBSTNRLO": _low_standard(low, quantity, m.unit),
        "LBSTNRHI": decimal_text(m.uln) if m.uln is not None else None,
        "LBNRIND": None,
        "LBLOINC": _loinc(ctx, m),
        "LBSPEC": test.spec, "LBMETHOD": test.method or None,
        "LBANMETH": ctx.terms.egfr_methods.get(m.code) if m.analyte == "egfr-reported" else None,
        "LBLOBXFL": None, "LBBLFL": None, "LBDRVFL": None, "LBTOX": None, "LBTOXGR": None,
        **_visit(slot),
        "LBDTC": dtc(m.at, m.day_precision, ctx.study),
        "LBDY": study_day(m.at, day0_date, ctx.study),
        "_key": m.source, "_at": m.at,
    }
    row["LBNRIND"] = _indicator(row, m)
    return row


def _visit(slot: VisitSlot | None) -> dict[str, Any]:
    if slot is None:
        return {"VISITNUM": None, "VISIT": None, "VISITDY": None}
    return {"VISITNUM": slot.visitnum, "VISIT": slot.visit, "VISITDY": slot.visitdy}


def _text(value: Any) -> str:
    """A stored JSON number as text ('' for none). JSON keeps the number, not its trailing
    zeros: a 0.50 sent is 0.5 here."""
    if value is None or isinstance(value, bool):
        return ""
    return str(value)


def _range(source: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    for reference in source.get("referenceRange") or []:
        if isinstance(reference, dict) and (reference.get("low") or reference.get("high")):
            low, high = reference.get("low"), reference.get("high")
            return (low if isinstance(low, dict) else {}), (high if isinstance(high, dict) else {})
    return {}, {}


def _low_standard(low: dict[str, Any], quantity: dict[str, Any], canonical: str) -> str | None:
    """The lower limit, only where it is already in the canonical unit (no conversion here)."""
    if low.get("value") is None:
        return None
    unit = low.get("code") or low.get("unit") or quantity.get("code") or quantity.get("unit")
    return _text(low["value"]) if unit == canonical else None


def _indicator(row: Row, m: Measurement) -> str | None:
    if m.censored or row["LBSTRESN"] is None:
        return None
    low = Decimal(row["LBSTNRLO"]) if row["LBSTNRLO"] else None
    high = m.uln
    if high is not None and m.value > high:
        return "HIGH"
    if low is not None and m.value < low:
        return "LOW"
    return "NORMAL" if high is not None or low is not None else None


def _loinc(ctx: Context, m: Measurement) -> str | None:
    """The value's accepted code when the catalogue has it as a LOINC code."""
    return m.code if (m.analyte, m.code) in ctx.loinc else None


def _toxicity(ctx: Context, row: Row, p: Placement, baseline: Measurement | None) -> None:
    """LBTOX / LBTOXGR: the trial's CTCAE grade of ALT/AST, for values from Day 0 on, graded
    against the baseline as the liver endpoint grades them (TRIAL.md 6.1)."""
    m = p.measurement
    term = ctx.terms.lab[m.analyte].toxicity
    uln = uln_of(m, ctx.study)
    if not term or uln is None or p.offset < timedelta(0):
        return
    grade = ctcae_grade(m.value, uln, baseline.value if baseline else None,
                        uln_of(baseline, ctx.study) if baseline else None, ctx.study)
    row["LBTOX"], row["LBTOXGR"] = term, str(grade)


def _computed_egfr(ctx: Context, data: SubjectData, creatinine: Measurement | None,
                   day0_date: date) -> list[Row]:
    """The trial's eGFR (renal-function results): one row per visit result, and its baseline
    (computed from the baseline creatinine) at that creatinine's time."""
    if COMPUTED_EGFR not in ctx.terms.lab:
        return []
    results = [r for r in data.endpoints.visit_results if r.analyte == COMPUTED_EGFR]
    rows = [_derived(ctx, data, r, r.value, r.visit, day0_date) for r in results]
    with_baseline = next((r for r in results if r.baseline is not None), None)
    if with_baseline is not None and creatinine is not None:
        row = _derived(ctx, data, with_baseline, with_baseline.baseline or Decimal(0), BASELINE,
                       day0_date, at=creatinine)
        row["LBBLFL"] = "Y"
        rows.append(row)
    return rows


def _derived(ctx: Context, data: SubjectData, result: VisitResult, value: Decimal, visit: str,
             day0_date: date, *, at: Measurement | None = None) -> Row:
    test = ctx.terms.lab[COMPUTED_EGFR]
    when, day_precision = (at.at, at.day_precision) if at else (result.at, False)
    text, unit = decimal_text(value), ctx.terms.unit(result.unit)
    return {
        "STUDYID": ctx.studyid, "DOMAIN": "LB", "USUBJID": ctx.usubjid(data.subject),
        "LBSEQ": None, "LBTESTCD": test.testcd, "LBTEST": test.test, "LBCAT": test.cat,
        "LBORRES": text, "LBORRESU": unit, "LBORNRLO": None, "LBORNRHI": None,
        "LBSTRESC": text, "LBSTRESN": text, "LBSTRESU": unit, "LBSTNRLO": None,
        "LBSTNRHI": None, "LBNRIND": None, "LBLOINC": None, "LBSPEC": test.spec,
        "LBMETHOD": test.method or None,
        "LBANMETH": ctx.terms.egfr_methods.get(result.egfr_method or "", result.egfr_method),
        "LBLOBXFL": None, "LBBLFL": None, "LBDRVFL": "Y", "LBTOX": None, "LBTOXGR": None,
        **_visit(ctx.schedule.slot(visit)),
        "LBDTC": dtc(when, day_precision, ctx.study),
        "LBDY": study_day(when, day0_date, ctx.study),
        "_key": f"{data.subject}.{COMPUTED_EGFR}.{visit}", "_at": when,
    }


def _number(ctx: Context, rows: list[Row]) -> None:
    """LBSEQ from each row's stable key; a clash inside a subject (a one-in-a-billion chance)
    takes the next free number, keys in sorted order."""
    taken: set[int] = set()
    for row in sorted(rows, key=lambda r: r["_key"]):
        seq = ctx.sequence(row["_key"])
        while seq in taken:
            seq += 1
        taken.add(seq)
        row["LBSEQ"] = seq
