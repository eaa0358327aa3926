"""Small builders for the trial tests: measurements, records, lookups of results."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from fhir_adapter.trial.model import (
    Infusion,
    Measurement,
    Participant,
    ParticipantEndpoints,
    ParticipantRecord,
    ParticipantResult,
    VisitResult,
)

TEHRAN = ZoneInfo("Asia/Tehran")  # the study's time zone (mappings/study.toml), +03:30
#: Day 0 of most tests: 2024-03-20 06:00 UTC = 09:30 in Tehran, the same calendar day there.
DAY0 = datetime(2024, 3, 20, 6, 0, tzinfo=UTC)
_ids = itertools.count(1)


def at(days: float = 0, hours: float = 0, seconds: float = 0, day0: datetime = DAY0) -> datetime:
    return day0 + timedelta(days=days, hours=hours, seconds=seconds)


def meas(
    analyte: str,
    value: str | int,
    when: datetime,
    *,
    status: str = "final",
    comparator: str | None = None,
    uln: str | None = None,
    unit: str = "",
    source: str | None = None,
    day_precision: bool = False,
) -> Measurement:
    return Measurement(
        source=source or f"Observation/{analyte}-{next(_ids)}",
        analyte=analyte,
        value=Decimal(str(value)),
        unit=unit,
        at=when,
        status=status,
        comparator=comparator,
        uln=Decimal(uln) if uln is not None else None,
        day_precision=day_precision,
    )


def day_meas(analyte: str, value: str | int, day: date, status: str = "final") -> Measurement:
    """A value known only to the day: midnight of that date in the study's time zone."""
    midnight = datetime.combine(day, time(0), TEHRAN)
    return meas(analyte, value, midnight, status=status, day_precision=True)


def record(
    measurements: list[Measurement],
    *,
    subject: str = "NCT02382874-1",
    sex: str | None = "female",
    birth: date | None = date(2014, 5, 1),
    day0: datetime | None = DAY0,
    status: str = "completed",
) -> ParticipantRecord:
    infusions = [Infusion("MedicationAdministration/inf-1", day0, status)] if day0 else []
    return ParticipantRecord(Participant(subject, sex, birth), infusions, list(measurements))


def find_visit(
    out: ParticipantEndpoints, endpoint: str, analyte: str, visit: str
) -> VisitResult | None:
    """The one visit-level result of (endpoint, analyte, visit), or None."""
    found = [
        r
        for r in out.visit_results
        if (r.endpoint, r.analyte, r.visit) == (endpoint, analyte, visit)
    ]
    assert len(found) <= 1, found
    return found[0] if found else None


def visit_result(out: ParticipantEndpoints, endpoint: str, analyte: str, visit: str) -> VisitResult:
    """The one visit-level result of (endpoint, analyte, visit); it must exist."""
    found = find_visit(out, endpoint, analyte, visit)
    assert found is not None, (endpoint, analyte, visit, out.visit_results)
    return found


def find_participant(out: ParticipantEndpoints, code: str) -> ParticipantResult | None:
    found = [r for r in out.participant_results if r.code == code]
    assert len(found) <= 1, found
    return found[0] if found else None


def participant_result(out: ParticipantEndpoints, code: str) -> ParticipantResult:
    found = find_participant(out, code)
    assert found is not None, (code, out.participant_results)
    return found
