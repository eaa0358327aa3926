"""The study summary: counts per participant-level result, medians of change (TRIAL.md 6.7)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from fhir_adapter.trial.model import ParticipantEndpoints, StudySummary

__all__ = ["median", "median_key", "summarize"]

#: value sets seeded with zero counts, so that a category no participant reached still shows
_DOMAINS: tuple[frozenset[str], ...] = (
    frozenset({"D", "N", "U"}),
    frozenset({"complete", "partial", "none"}),
    frozenset({"true", "false"}),
)


def median_key(analyte: str, visit: str) -> str:
    """Key of a median in ``StudySummary.medians``: ``creatinine.W2``."""
    return f"{analyte}.{visit}"


def median(values: Iterable[Decimal]) -> Decimal | None:
    """The exact median; the mean of the two middle values for an even count; None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _label(value: bool | int | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def summarize(
    participants: list[ParticipantEndpoints],
    median_changes: tuple[tuple[str, str, str], ...],
) -> StudySummary:
    """Counts per participant-level code and value, participants with a value per endpoint,
    and the median change of the chosen (endpoint, analyte, visit) results
    (``StudyDefinition.median_changes``, from study.toml)."""
    summary = StudySummary()
    for p in participants:
        for code in sorted({r.endpoint for r in p.visit_results}):
            summary.participants_with_value[code] = summary.participants_with_value.get(code, 0) + 1
        for r in p.participant_results:
            summary.population[r.code] = summary.population.get(r.code, 0) + 1
            counts = summary.counts.setdefault(r.code, {})
            label = _label(r.value)
            counts[label] = counts.get(label, 0) + 1
    for counts in summary.counts.values():
        for domain in _DOMAINS:
            if set(counts) <= domain:
                for label in sorted(domain):
                    counts.setdefault(label, 0)
                break
    for endpoint, analyte, visit in median_changes:
        changes = [
            r.change
            for p in participants
            for r in p.visit_results
            if (r.endpoint, r.analyte, r.visit) == (endpoint, analyte, visit)
            and r.change is not None
        ]
        summary.medians[median_key(analyte, visit)] = median(changes)
    return summary
