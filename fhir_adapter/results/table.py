"""The tidy results table: RFC 4180 CSV, one row per participant x analyte x visit."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition
from fhir_adapter.trial.model import ParticipantEndpoints, ParticipantRecord, VisitResult
from fhir_adapter.trial.visits import BASELINE, assign_visits

from .vocab import Pseudonymiser, decimal_text, fhir_time

__all__ = ["COLUMNS", "category", "shown_values", "to_csv"]

COLUMNS = (
    "subject",
    "endpoint",
    "analyte",
    "visit",
    "value",
    "comparator",
    "unit",
    "baseline",
    "baseline_comparator",
    "change",
    "percent_change",
    "fold_change",
    "category",
    "egfr_method",
    "day_offset",
    "effective",
    "source_ids",
)
_SECONDS_PER_DAY = Decimal(86400)
_DAY_PLACES = Decimal("0.0001")
#: Endpoints whose visit results are categorised by interpretation; none means unchanged (N).
_INTERPRETED = frozenset({"serum-creatinine"})


def category(result: VisitResult) -> str:
    """The result's category: remission, CTCAE grade, or creatinine interpretation (D/N/U)."""
    if result.remission is not None:
        return result.remission
    if result.ctcae_grade is not None:
        return str(result.ctcae_grade)
    if result.interpretation is not None:
        return result.interpretation
    if result.endpoint in _INTERPRETED and result.percent_change is not None:
        return "N"
    return ""


def _day_offset(at: datetime, day0: datetime | None) -> str:
    if day0 is None:
        return ""
    elapsed = at - day0
    seconds = Decimal(elapsed.days * 86400 + elapsed.seconds) + Decimal(elapsed.microseconds) / (
        Decimal(10) ** 6
    )
    return decimal_text((seconds / _SECONDS_PER_DAY).quantize(_DAY_PLACES))


def _row(result: VisitResult, day0: datetime | None, pseudonyms: Pseudonymiser) -> list[str]:
    return [
        result.subject,
        result.endpoint,
        result.analyte,
        result.visit,
        decimal_text(result.value),
        result.comparator or "",
        result.unit,
        decimal_text(result.baseline),
        result.baseline_comparator or "",
        decimal_text(result.change),
        decimal_text(result.percent_change),
        decimal_text(result.fold_change),
        category(result),
        result.egfr_method or "",
        _day_offset(result.at, day0),
        fhir_time(result.at),
        ";".join(pseudonyms.id(k) for k in dict.fromkeys(result.sources)),
    ]


def shown_values(
    record: ParticipantRecord, study: StudyDefinition, catalogue: AnalyteCatalogue
) -> list[VisitResult]:
    """The values of display-only analytes (the lab-reported eGFR), shown without an endpoint:
    the value of the baseline and of each visit window, and every value outside all windows
    (``visit`` empty). None without Day 0."""
    day0 = record.day0
    shown = [a.key for a in catalogue.analytes.values() if a.display_only]
    if day0 is None or not shown:
        return []
    assignment = assign_visits(record.measurements, day0, study)
    rows = []
    for analyte in shown:
        for placement in assignment.placements.get(analyte, ()):
            if placement.window is not None and not placement.chosen:
                continue
            m = placement.measurement
            rows.append(
                VisitResult(
                    subject=record.participant.subject,
                    endpoint="",
                    analyte=analyte,
                    visit=placement.window or "",
                    value=m.value,
                    unit=m.unit,
                    at=m.at,
                    comparator=m.comparator,
                    sources=(m.source,),
                )
            )
    return rows


def to_csv(
    endpoints: Iterable[ParticipantEndpoints],
    *,
    study: StudyDefinition,
    pseudonyms: Pseudonymiser,
    records: Iterable[ParticipantRecord] = (),
    catalogue: AnalyteCatalogue | None = None,
) -> str:
    """Every visit-level result as CSV text with a header row (``COLUMNS``); with ``records`` and
    ``catalogue``, also the display-only values (``shown_values``, ``endpoint`` empty).

    Numbers use '.' decimals and no exponent; a missing value is an empty cell; ``day_offset``
    is the elapsed time from Day 0 (from ``records``) in days with four decimals; ``source_ids``
    are the pseudonymous ids of the source Observations, ';'-separated. Rows are sorted by
    subject, endpoint, analyte and visit in schedule order.
    """
    day0: dict[str, datetime | None] = {}
    results = [r for e in endpoints for r in e.visit_results]
    for record in records:
        infusion = record.day0
        day0[record.participant.subject] = infusion.at if infusion else None
        if catalogue is not None:
            results += shown_values(record, study, catalogue)
    order = {BASELINE: -1} | {v.code: i for i, v in enumerate(study.visits)}
    results.sort(key=lambda r: (r.subject, r.endpoint, r.analyte, order.get(r.visit, 999), r.at))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    for result in results:
        writer.writerow(_row(result, day0.get(result.subject), pseudonyms))
    return buffer.getvalue()
