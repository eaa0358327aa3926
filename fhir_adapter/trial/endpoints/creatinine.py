"""Serum creatinine at W2: the category decreased / unchanged / increased (TRIAL.md 6.2)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from fhir_adapter.trial.definitions import EndpointDef
from fhir_adapter.trial.endpoints.common import Context, compare
from fhir_adapter.trial.endpoints.roles import per_visit
from fhir_adapter.trial.model import Measurement, ParticipantResult, VisitResult

__all__ = ["DECREASED", "INCREASED", "UNCHANGED", "category", "enrich", "participant_results"]

# v3-ObservationInterpretation codes
DECREASED, UNCHANGED, INCREASED = "D", "N", "U"


def category(percent: Decimal, threshold: Decimal) -> str:
    """D when percent <= -threshold, U when percent >= +threshold, else N (exact comparison)."""
    if percent <= -threshold:
        return DECREASED
    if percent >= threshold:
        return INCREASED
    return UNCHANGED


def enrich(ctx: Context, endpoint: EndpointDef, result: VisitResult, m: Measurement) -> VisitResult:
    """Set the interpretation D or U from the exact percent change; none when unchanged."""
    percent = compare(m, ctx.assignment.baseline(m.analyte)).percent
    if percent is None:
        return result
    code = category(percent, ctx.study.creatinine_change_pct)
    return replace(result, interpretation=None if code == UNCHANGED else code)


def participant_results(
    ctx: Context, endpoint: EndpointDef, results: list[VisitResult]
) -> list[ParticipantResult]:
    """The category D / N / U per visit of the endpoint, where a percent change exists."""
    out: list[ParticipantResult] = []
    for r in results:
        if r.percent_change is None or r.visit not in endpoint.visits:
            continue
        code = r.interpretation or UNCHANGED
        name = per_visit("creatinine-category", r.visit)
        out.append(ParticipantResult(ctx.subject, name, code, None, (r.key,)))
    return out
