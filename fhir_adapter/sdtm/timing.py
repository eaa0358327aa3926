"""SDTM timing: ISO 8601 --DTC text, study days, visit numbers and unscheduled visits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from fhir_adapter.trial.definitions import StudyDefinition
from fhir_adapter.trial.visits import BASELINE, study_date

__all__ = ["UNSCHEDULED", "Schedule", "VisitSlot", "dtc", "study_day"]

#: Step between unscheduled visits after one protocol visit (VISITNUM 4.01, 4.02, ...).
UNSCHEDULED_STEP = Decimal("0.01")
UNSCHEDULED = "UNSCHEDULED"


def dtc(at: datetime | None, day_precision: bool, study: StudyDefinition) -> str:
    """ISO 8601 date-time in the study's time zone, without offset (the zone of every --DTC of
    the delivery is the study's, said in metadata.json); a date when only the day is known."""
    if at is None:
        return ""
    local = at.astimezone(study.timezone)
    if day_precision:
        return local.date().isoformat()
    return local.strftime("%Y-%m-%dT%H:%M:%S")


def study_day(at: datetime | None, day0_date: date | None, study: StudyDefinition) -> int | None:
    """SDTMIG study day: Day 1 is the date of RFSTDTC, the day before is -1 (there is no 0)."""
    if at is None or day0_date is None:
        return None
    days = (study_date(at, study) - day0_date).days
    return days + 1 if days >= 0 else days


@dataclass(frozen=True, slots=True)
class VisitSlot:
    """Where a value sits in SV/TV terms."""

    visitnum: Decimal
    visit: str
    visitdy: int | None
    scheduled: bool


class Schedule:
    """The protocol's visits numbered in order: BL 1, then each visit of mappings/study.toml.

    A value that represents no protocol visit (outside every window, or not the one chosen in
    its window) is an unscheduled visit numbered after the protocol visit whose nominal time it
    follows: before Day 0 0.01, 0.02 ...; from Day 0 on the previous visit's number + 0.01 per
    calendar day with such values, in time order."""

    def __init__(self, study: StudyDefinition, names: dict[str, str]) -> None:
        self.study = study
        self.names = names
        self.codes = (BASELINE, *(v.code for v in study.visits))
        self.number = {code: Decimal(i) for i, code in enumerate(self.codes, start=1)}
        self._nominal = [(v.nominal, self.number[v.code]) for v in study.visits]

    def visit_day(self, code: str) -> int | None:
        """Planned study day: the nominal offset's day + 1; none for the baseline window."""
        if code == BASELINE:
            return None
        return self.study.visit(code).nominal.days + 1

    def slot(self, code: str) -> VisitSlot:
        return VisitSlot(self.number[code], self.names.get(code, code), self.visit_day(code),
                         True)

    def anchor(self, offset: timedelta) -> Decimal:
        """The number of the protocol visit an unscheduled value at ``offset`` follows."""
        if offset < timedelta(0):
            return Decimal(0)
        before = [number for nominal, number in self._nominal if nominal <= offset]
        return max(before, default=self.number[BASELINE])

    def unscheduled(self, offsets: dict[date, timedelta]) -> dict[date, VisitSlot]:
        """Calendar day (study time zone) -> its unscheduled slot; ``offsets`` gives each day's
        earliest offset from Day 0."""
        slots: dict[date, VisitSlot] = {}
        counts: dict[Decimal, int] = {}
        for day in sorted(offsets):
            anchor = self.anchor(offsets[day])
            counts[anchor] = counts.get(anchor, 0) + 1
            slots[day] = VisitSlot(anchor + UNSCHEDULED_STEP * counts[anchor], UNSCHEDULED, None,
                                   False)
        return slots
