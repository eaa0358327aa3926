"""What every endpoint shares: the participant's context, change from baseline, result building."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from fhir_adapter.trial.definitions import AnalyteCatalogue, EndpointDef, StudyDefinition
from fhir_adapter.trial.model import Measurement, ParticipantRecord, VisitResult
from fhir_adapter.trial.rounding import publish
from fhir_adapter.trial.visits import VisitAssignment, study_date

__all__ = [
    "Change",
    "Context",
    "age_in_years",
    "compare",
    "measured_result",
    "sources_of",
]

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Context:
    """One participant with Day 0, ready for the endpoint rules."""

    record: ParticipantRecord
    study: StudyDefinition
    catalogue: AnalyteCatalogue
    assignment: VisitAssignment
    age_at_day0: int | None

    @property
    def subject(self) -> str:
        return self.record.participant.subject

    def unit(self, analyte: str, fallback: str = "") -> str:
        known = self.catalogue.analytes.get(analyte)
        return known.unit if known else fallback

    def age_at(self, at: datetime) -> int | None:
        """Age in completed years on the date of ``at`` (study time zone)."""
        born = self.record.participant.birth_date
        return age_in_years(born, study_date(at, self.study)) if born else None


@dataclass(frozen=True, slots=True)
class Change:
    """Exact change from baseline; every field None when it cannot be computed."""

    change: Decimal | None = None
    percent: Decimal | None = None
    fold: Decimal | None = None


def age_in_years(born: date, on: date) -> int:
    """Completed years from ``born`` to ``on`` (a birthday on 29 February counts on 1 March)."""
    years = on.year - born.year
    if (on.month, on.day) < (born.month, born.day):
        years -= 1
    return years


def compare(value: Measurement, baseline: Measurement | None) -> Change:
    """Change, percent change and fold change, exact; none from a censored value or baseline."""
    if baseline is None or value.censored or baseline.censored:
        return Change()
    return change_of(value.value, baseline.value)


def change_of(value: Decimal, baseline: Decimal) -> Change:
    """Change of two exact numbers; percent and fold change need a baseline other than zero."""
    change = value - baseline
    if baseline == 0:
        return Change(change=change)
    return Change(change=change, percent=HUNDRED * change / baseline, fold=value / baseline)


def sources_of(*measurements: Measurement | None) -> tuple[str, ...]:
    """Source keys in order, without duplicates or blanks."""
    keys: list[str] = []
    for m in measurements:
        if m is not None and m.source and m.source not in keys:
            keys.append(m.source)
    return tuple(keys)


def measured_result(
    ctx: Context, endpoint: EndpointDef, visit: str, value: Measurement
) -> VisitResult:
    """The visit-level result of a measured analyte: value, baseline, change, percent, fold."""
    baseline = ctx.assignment.baseline(value.analyte)
    delta = compare(value, baseline)
    return VisitResult(
        subject=ctx.subject,
        endpoint=endpoint.code,
        analyte=value.analyte,
        visit=visit,
        value=value.value,
        unit=ctx.unit(value.analyte, value.unit),
        at=value.at,
        comparator=value.comparator,
        baseline=baseline.value if baseline else None,
        baseline_comparator=baseline.comparator if baseline else None,
        change=delta.change,
        percent_change=publish(delta.percent, "percent"),
        fold_change=publish(delta.fold, "fold") if endpoint.fold_change else None,
        sources=sources_of(value, baseline),
    )
