"""The statisticians' table: one tidy CSV of visit-level and participant-level rows, and its
data dictionary.

Visit-level rows (``level`` = ``visit``): every published visit-level result; every other value
chosen for a visit (or the baseline) of every measured analyte, ALT and AST graded at each of them;
and every value after Day 0 outside every window (``visit`` empty, ``nearest_visit`` set).
Participant-level rows (``level`` = ``participant``): every participant-level result. Each row
carries the covariates (sex, age at Day 0). Numbers are written as the result Bundle rounds them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

from fhir_adapter.trial.endpoints.common import compare
from fhir_adapter.trial.endpoints.liver import ctcae_grade, uln_of
from fhir_adapter.trial.model import Measurement, ParticipantResult, VisitResult
from fhir_adapter.trial.rounding import publish
from fhir_adapter.trial.visits import BASELINE
from fhir_adapter.workspace.grid import nearest_visit
from fhir_adapter.workspace.snapshot import ParticipantView, Snapshot

__all__ = ["COLUMNS", "DICTIONARY", "category_label", "dataset_csv", "dictionary_csv"]

LIVER = ("alt", "ast")
#: column -> (type, unit or values, meaning): the data dictionary, in column order.
DICTIONARY: dict[str, tuple[str, str, str]] = {
    "level": ("code", "visit | participant", "visit-level row or participant-level row"),
    "subject": ("text", "", "subject code of the participant (no hospital identifier)"),
    "sex": ("code", "male | female | other | unknown", "administrative gender"),
    "age_at_day0": ("integer", "years", "age in completed years on the date of Day 0"),
    "day0": ("date", "YYYY-MM-DD", "date of the AD-MSC infusion in the study time zone"),
    "endpoint": ("code", "trial-endpoint", "endpoint of a published result; empty for a value "
                 "without one; for participant rows the participant-level code"),
    "analyte": ("code", "mappings/analytes.toml", "analyte key"),
    "visit": ("code", "BL, H12, W1, W2, W4, M2 ... M12", "visit whose window holds the value; "
              "empty when outside every window"),
    "nearest_visit": ("code", "BL, D0, H12 ... M12", "for a value outside every window, the "
                      "visit whose nominal time is nearest"),
    "day_offset": ("decimal", "days", "elapsed time from Day 0 (4 decimals)"),
    "effective": ("dateTime", "ISO 8601 with zone", "time of the measurement"),
    "value": ("decimal", "see unit", "value in the canonical unit (for participant rows the "
              "result: true/false, a grade, or a category code)"),
    "comparator": ("code", "< | <= | > | >=", "set when the value is censored"),
    "unit": ("UCUM", "", "canonical unit of the analyte"),
    "baseline": ("decimal", "see unit", "baseline value (last value in [-30 d, 0))"),
    "baseline_comparator": ("code", "< | <= | > | >=", "set when the baseline is censored"),
    "change": ("decimal", "see unit", "value - baseline"),
    "percent_change": ("decimal", "%", "100 x change / baseline, 2 decimals"),
    "fold_change": ("decimal", "1", "value / baseline, 3 decimals (cytokines, Treg)"),
    "uln": ("decimal", "U/L", "upper limit of normal of the value (ALT, AST)"),
    "fold_uln": ("decimal", "1", "value / ULN, 2 decimals (ALT, AST)"),
    "ctcae_grade": ("integer", "0-4", "CTCAE v5.0 grade of the increase (ALT, AST)"),
    "category": ("code", "see category_label", "remission, CTCAE grade or creatinine "
                 "category code"),
    "category_label": ("text", "", "the category code spelled out"),
    "egfr_method": ("code", "bedside-schwartz | ckd-epi-2021", "formula of the computed eGFR"),
    "protein_rate_bsa": ("decimal", "mg/(m2.h)", "24 h protein per body surface, 2 decimals"),
    "upcr": ("decimal", "mg/mg", "urine protein/creatinine ratio of the same visit"),
    "published": ("boolean", "true | false", "the row is a published endpoint result"),
    "source_ids": ("text", "';'-separated", "pseudonymous ids of the source Observations"),
}
COLUMNS = tuple(DICTIONARY)
_REMISSION = {"complete": "complete remission", "partial": "partial remission",
              "none": "no remission"}
_GRADES = ("grade 0: none", "grade 1: mild", "grade 2: moderate", "grade 3: severe",
           "grade 4: life-threatening")
_EGFR = {"bedside-schwartz": "bedside Schwartz (under 18)",
         "ckd-epi-2021": "CKD-EPI 2021 (18 and over)"}


def category_label(code: str, snapshot: Snapshot, *, endpoint: str = "") -> str:
    """A category code spelled out: remission, CTCAE grade, creatinine direction, boolean."""
    threshold = snapshot.number(snapshot.study.creatinine_change_pct)
    directions = {"D": f"decreased (<= -{threshold} %)", "U": f"increased (>= +{threshold} %)",
                  "N": f"unchanged (within {threshold} %)"}
    if code in _REMISSION:
        return _REMISSION[code]
    if code in directions:
        return directions[code]
    if ("ctcae" in endpoint or endpoint == "liver-function") and code.isdigit() \
            and int(code) < len(_GRADES):
        return _GRADES[int(code)]
    return {"true": "yes", "false": "no"}.get(code, "")


def _category(result: VisitResult) -> str:
    if result.remission is not None:
        return result.remission
    if result.ctcae_grade is not None:
        return str(result.ctcae_grade)
    if result.interpretation is not None:
        return result.interpretation
    if result.endpoint == "serum-creatinine" and result.percent_change is not None:
        return "N"  # a creatinine result without interpretation is unchanged
    return ""


def _offset_days(at: datetime, day0: datetime | None) -> str:
    if day0 is None:
        return ""
    elapsed = at - day0
    seconds = Decimal(elapsed.days * 86400 + elapsed.seconds) + \
        Decimal(elapsed.microseconds) / 10**6
    return format((seconds / Decimal(86400)).quantize(Decimal("0.0001")).normalize(), "f")


class _Rows:
    """The rows of one participant."""

    def __init__(self, snapshot: Snapshot, view: ParticipantView) -> None:
        self.s = snapshot
        self.view = view
        day0 = snapshot.day0_date(view)
        age = snapshot.age_at_day0(view)
        self.common = {"subject": view.subject, "sex": view.record.participant.sex or "",
                       "age_at_day0": "" if age is None else str(age),
                       "day0": day0.isoformat() if day0 else ""}

    def row(self, **cells: str) -> dict[str, str]:
        return {c: "" for c in COLUMNS} | self.common | cells

    def ids(self, sources: tuple[str, ...]) -> str:
        return ";".join(self.s.source_id(k) for k in dict.fromkeys(sources) if
                        k.startswith("Observation/"))

    def result(self, r: VisitResult) -> dict[str, str]:
        n = self.s.number
        code = _category(r)
        return self.row(
            level="visit", endpoint=r.endpoint, analyte=r.analyte, visit=r.visit,
            day_offset=_offset_days(r.at, self.view.day0), effective=r.at.isoformat(),
            value=n(r.value), comparator=r.comparator or "", unit=r.unit, baseline=n(r.baseline),
            baseline_comparator=r.baseline_comparator or "", change=n(r.change),
            percent_change=n(r.percent_change), fold_change=n(r.fold_change), uln=n(r.uln),
            fold_uln=n(r.fold_uln),
            ctcae_grade="" if r.ctcae_grade is None else str(r.ctcae_grade), category=code,
            category_label=category_label(code, self.s, endpoint=r.endpoint),
            egfr_method=r.egfr_method or "", protein_rate_bsa=n(r.protein_rate_bsa),
            upcr=n(r.upcr), published="true", source_ids=self.ids(r.sources))

    def value(self, m: Measurement, visit: str, offset: timedelta) -> dict[str, str]:
        """A value without a published result at its visit (or outside every window)."""
        n, study = self.s.number, self.s.study
        assert self.view.assignment is not None
        baseline = self.view.assignment.baseline(m.analyte) if visit != BASELINE else None
        delta = compare(m, baseline)
        cells = {"uln": "", "fold_uln": "", "ctcae_grade": "", "category": ""}
        uln = uln_of(m, study) if m.analyte in LIVER else None
        if uln:
            grade = ctcae_grade(m.value, uln, baseline.value if baseline else None,
                                uln_of(baseline, study) if baseline else None, study)
            cells = {"uln": n(uln), "fold_uln": n(publish(m.value / uln, "fold_uln")),
                     "ctcae_grade": str(grade), "category": str(grade)}
        return self.row(
            level="visit", analyte=m.analyte, visit=visit,
            nearest_visit="" if visit else nearest_visit(self.s, offset),
            day_offset=_offset_days(m.at, self.view.day0), effective=m.at.isoformat(),
            value=n(m.value), comparator=m.comparator or "", unit=m.unit,
            baseline=n(baseline.value) if baseline else "",
            baseline_comparator=(baseline.comparator or "") if baseline else "",
            change=n(delta.change), percent_change=n(publish(delta.percent, "percent")),
            **cells, category_label=category_label(cells["category"], self.s,
                                                   endpoint="liver-function"),
            published="false", source_ids=self.ids((m.source,)))

    def participant(self, r: ParticipantResult) -> dict[str, str]:
        value = str(r.value).lower() if isinstance(r.value, bool) else str(r.value)
        return self.row(level="participant", endpoint=r.code, value=value, category=value,
                        category_label=category_label(value, self.s, endpoint=r.code),
                        source_ids=self.ids(tuple(k for k in r.sources)))

    def all(self) -> Iterator[dict[str, str]]:
        results = self.view.endpoints.visit_results
        published = {(r.analyte, r.visit) for r in results}
        rows = [self.result(r) for r in results]
        assignment = self.view.assignment
        if assignment is not None:
            for analyte, placed in assignment.placements.items():
                for p in placed:
                    if p.window is None and p.offset >= timedelta(0):
                        rows.append(self.value(p.measurement, "", p.offset))
                    elif p.chosen and (analyte, p.window) not in published:
                        rows.append(self.value(p.measurement, p.window or "", p.offset))
        order = {BASELINE: -1} | {v.code: i for i, v in enumerate(self.s.study.visits)}
        analytes = {a: i for i, a in enumerate(self.s.catalogue.analytes)}
        rows.sort(key=lambda r: (analytes.get(r["analyte"], 99), r["endpoint"],
                                 order.get(r["visit"], 999), r["effective"]))
        yield from rows
        for r in self.view.endpoints.participant_results:
            yield self.participant(r)


def dataset_csv(snapshot: Snapshot) -> str:
    """The whole table as RFC 4180 CSV with a header row (``COLUMNS``)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for view in snapshot.participants:
        writer.writerows(_Rows(snapshot, view).all())
    return buffer.getvalue()


def dictionary_csv() -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(("column", "type", "unit or values", "meaning"))
    for column, (kind, unit, meaning) in DICTIONARY.items():
        writer.writerow((column, kind, unit, meaning))
    return buffer.getvalue()
