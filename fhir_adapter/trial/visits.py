"""Visit assignment: the baseline, the value of each visit, values outside every window."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from fhir_adapter.errors import InvalidResource, Where
from fhir_adapter.trial.definitions import StudyDefinition, VisitDef
from fhir_adapter.trial.model import Infusion, Measurement

__all__ = [
    "BASELINE",
    "Placement",
    "VisitAssignment",
    "assign_visits",
    "DAY0",
    "calendar_days",
    "latest_within",
    "study_date",
]

#: The visit code of the baseline (RESULTS.md, CodeSystem trial-visit).
BASELINE = "BL"
#: The id of Day 0 in the published schedule: every visit window is an offset from it.
DAY0 = "D0"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one counting value falls.

    ``offset`` is the exact elapsed time from Day 0, or, for a day-precision value, the number of
    calendar days (study time zone) from Day 0's calendar day. ``window`` is ``BL``, a visit code,
    or None (outside every window); ``chosen`` is true for the value that represents its window.
    """

    measurement: Measurement
    offset: timedelta
    window: str | None
    chosen: bool = False


@dataclass(slots=True)
class VisitAssignment:
    """Every value of one participant placed relative to Day 0, per analyte (catalogue key)."""

    day0: datetime
    day0_date: date
    placements: dict[str, list[Placement]] = field(default_factory=dict)
    not_counting: dict[str, list[Measurement]] = field(default_factory=dict)
    missed: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def baseline(self, analyte: str) -> Measurement | None:
        """The baseline value of an analyte: the last counting value in [-30 d, 0)."""
        return self.value(analyte, BASELINE)

    def value(self, analyte: str, visit: str) -> Measurement | None:
        """The value that represents a visit (or ``BL``), None when the visit has none."""
        for p in self.placements.get(analyte, ()):
            if p.chosen and p.window == visit:
                return p.measurement
        return None

    def visits(self, analyte: str) -> dict[str, Measurement]:
        """Visit code -> value, for every visit of the analyte that has one (``BL`` excluded)."""
        return {
            p.window: p.measurement
            for p in self.placements.get(analyte, ())
            if p.chosen and p.window not in (None, BASELINE)
        }

    def outside(self, analyte: str) -> list[Measurement]:
        """Counting values in no window: kept and shown, assigned to no visit."""
        return [p.measurement for p in self.placements.get(analyte, ()) if p.window is None]

    def after_day0(self, analyte: str) -> list[Placement]:
        """Counting values from Day 0 on, in a window or not, chosen or not."""
        return [p for p in self.placements.get(analyte, ()) if p.offset >= timedelta(0)]


def study_date(at: datetime, study: StudyDefinition) -> date:
    """The calendar date of an instant in the study's time zone."""
    return at.astimezone(study.timezone).date()


def calendar_days(at: datetime, day0_date: date, study: StudyDefinition) -> int:
    """Calendar days from Day 0's date to the date of ``at``, both in the study's time zone."""
    return (study_date(at, study) - day0_date).days


def latest_within(
    measurements: Iterable[Measurement], analyte: str, at: datetime, lookback: timedelta
) -> Measurement | None:
    """The latest counting, uncensored value of ``analyte`` in [at - lookback, at]; never after."""
    usable = [
        m
        for m in measurements
        if m.analyte == analyte and m.counts and not m.censored and at - lookback <= m.at <= at
    ]
    return max(usable, key=lambda m: (m.at, m.source)) if usable else None


def assign_visits(
    measurements: Iterable[Measurement],
    day0: Infusion | datetime,
    study: StudyDefinition,
    *,
    as_of: datetime | None = None,
) -> VisitAssignment:
    """Place each value relative to Day 0 and choose the value of the baseline and of each visit.

    A scheduled visit (one an endpoint of the study uses for the analyte) without a value is
    missed once follow-up has passed its window: ``as_of`` when given, else the participant's
    latest counting value of any analyte.
    """
    if isinstance(day0, Infusion):
        start, day0_precise = day0.at, not day0.day_precision
    else:
        start, day0_precise = day0, True
    _require_aware(start, "MedicationAdministration.effective")
    result = VisitAssignment(day0=start, day0_date=study_date(start, study))
    for m in measurements:
        _require_aware(m.at, "Observation.effective")
        if not m.counts:
            result.not_counting.setdefault(m.analyte, []).append(m)
            continue
        offset = _offset(m, result, study)
        window = _window(m, offset, study, hours_allowed=day0_precise)
        result.placements.setdefault(m.analyte, []).append(Placement(m, offset, window))
    for analyte, placed in result.placements.items():
        result.placements[analyte] = _choose(placed, study)
    result.missed = _missed(result, study, as_of)
    return result


def _require_aware(at: datetime, element: str) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidResource(
            f"time {at.isoformat()} has no time zone; offsets from Day 0 need one",
            where=Where(element=element),
        )


def _offset(m: Measurement, assignment: VisitAssignment, study: StudyDefinition) -> timedelta:
    if m.day_precision:
        return timedelta(days=calendar_days(m.at, assignment.day0_date, study))
    return m.at - assignment.day0  # aware datetimes: exact elapsed time, whatever the zones


def _window(
    m: Measurement, offset: timedelta, study: StudyDefinition, *, hours_allowed: bool
) -> str | None:
    if offset < timedelta(0):
        # strictly before Day 0; a day-precision value of Day 0's own date has offset 0, so it
        # never lands here
        return BASELINE if offset >= study.baseline_start else None
    holding = [
        v
        for v in study.visits
        if v.start <= offset <= v.end
        and not (v.hour_based and (m.day_precision or not hours_allowed))
    ]
    if not holding:
        return None
    # overlapping windows (not in this protocol): the visit whose nominal offset is nearest
    return min(holding, key=lambda v: (abs(offset - v.nominal), -v.nominal)).code


def _choose(placed: list[Placement], study: StudyDefinition) -> list[Placement]:
    """Mark the value of each window: baseline the last; a visit the nearest to nominal, tie
    the later."""
    nominal = {v.code: v.nominal for v in study.visits}
    best: dict[str, Placement] = {}
    for p in placed:
        if p.window is None:
            continue
        current = best.get(p.window)
        if current is None or _rank(p, nominal) > _rank(current, nominal):
            best[p.window] = p
    chosen = {id(p) for p in best.values()}
    marked = [Placement(p.measurement, p.offset, p.window, id(p) in chosen) for p in placed]
    return sorted(marked, key=lambda p: (p.offset, p.measurement.at, p.measurement.source))


def _rank(
    p: Placement, nominal: dict[str, timedelta]
) -> tuple[timedelta, timedelta, datetime, str]:
    m = p.measurement
    if p.window == BASELINE:
        return (timedelta(0), p.offset, m.at, m.source)
    return (-abs(p.offset - nominal[p.window or ""]), p.offset, m.at, m.source)


def _scheduled(study: StudyDefinition) -> dict[str, list[VisitDef]]:
    """Analyte -> the visits its endpoints use, in the order of the study's visits."""
    codes: dict[str, set[str]] = {}
    for endpoint in study.endpoints.values():
        for analyte in endpoint.analytes:
            codes.setdefault(analyte, set()).update(endpoint.visits)
    return {a: [v for v in study.visits if v.code in wanted] for a, wanted in codes.items()}


def _missed(
    assignment: VisitAssignment, study: StudyDefinition, as_of: datetime | None
) -> dict[str, tuple[str, ...]]:
    if as_of is not None:
        reached = as_of - assignment.day0
    else:
        offsets = [p.offset for ps in assignment.placements.values() for p in ps]
        reached = max(offsets, default=timedelta(0))
    missed: dict[str, tuple[str, ...]] = {}
    for analyte, visits in _scheduled(study).items():
        have = assignment.visits(analyte)
        gone = tuple(v.code for v in visits if v.code not in have and v.end < reached)
        if gone and (analyte in assignment.placements or analyte in assignment.not_counting):
            missed[analyte] = gone
    return missed
