"""Proteinuria: remission per visit with the body-surface rule, best and last response (6.3)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal, localcontext

from fhir_adapter.trial.definitions import EndpointDef
from fhir_adapter.trial.endpoints.common import Context, compare, sources_of
from fhir_adapter.trial.endpoints.roles import BEST_RESPONSE, HEIGHT, UPCR, WEIGHT, per_visit
from fhir_adapter.trial.model import Measurement, ParticipantResult, VisitResult
from fhir_adapter.trial.rounding import WORK_PRECISION, publish
from fhir_adapter.trial.visits import latest_within

__all__ = [
    "COMPLETE",
    "NONE",
    "PARTIAL",
    "RANK",
    "enrich",
    "mosteller_bsa",
    "participant_results",
    "remission",
]

COMPLETE, PARTIAL, NONE = "complete", "partial", "none"
#: better response first
RANK = {COMPLETE: 2, PARTIAL: 1, NONE: 0}
HOURS_PER_DAY = Decimal(24)
MOSTELLER_DIVISOR = Decimal(3600)


def mosteller_bsa(height_cm: Decimal, weight_kg: Decimal) -> Decimal:
    """Body surface area in m2 (Mosteller): sqrt(height cm x weight kg / 3600)."""
    with localcontext() as ctx:
        ctx.prec = WORK_PRECISION
        return (height_cm * weight_kg / MOSTELLER_DIVISOR).sqrt()


def remission(ctx: Context, m: Measurement, percent: Decimal | None, rate: Decimal | None) -> str:
    """complete, partial or none for one 24 h urine protein value (thresholds of the study)."""
    study = ctx.study
    limit = study.complete_below_mg_per_day
    if m.value < limit or (m.comparator == "<" and m.value <= limit):
        return COMPLETE
    if percent is None:  # no baseline, or a censored value or baseline
        return NONE
    reduced = percent <= -study.partial_reduction_pct
    if rate is not None:
        below_nephrotic = rate < study.nephrotic_rate_mg_m2_h
    else:
        below_nephrotic = m.value < study.nephrotic_mg_per_day
    return PARTIAL if reduced and below_nephrotic else NONE


def _body(ctx: Context, m: Measurement) -> tuple[Measurement | None, Measurement | None]:
    lookback = ctx.study.anthropometry_lookback
    measurements = ctx.record.measurements
    height = latest_within(measurements, HEIGHT, m.at, lookback)
    weight = latest_within(measurements, WEIGHT, m.at, lookback)
    if height is None or weight is None or height.value <= 0 or weight.value <= 0:
        return None, None
    return height, weight


def enrich(ctx: Context, endpoint: EndpointDef, result: VisitResult, m: Measurement) -> VisitResult:
    """Add the protein rate per body surface, the remission category and the UPCR of the visit."""
    height, weight = _body(ctx, m)
    rate = None
    body: tuple[Measurement, ...] = ()
    if height is not None and weight is not None and not m.censored:
        rate = m.value / mosteller_bsa(height.value, weight.value) / HOURS_PER_DAY
        body = (height, weight)
    percent = compare(m, ctx.assignment.baseline(m.analyte)).percent
    upcr = ctx.assignment.value(UPCR, result.visit)
    return replace(
        result,
        remission=remission(ctx, m, percent, rate),
        protein_rate_bsa=publish(rate, "rate"),
        upcr=upcr.value if upcr is not None else None,
        sources=_merge(result.sources, sources_of(*body, upcr)),
    )


def _merge(first: tuple[str, ...], more: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(first + more))


def participant_results(
    ctx: Context, endpoint: EndpointDef, results: list[VisitResult]
) -> list[ParticipantResult]:
    """The best category reached after Day 0, and the category at the endpoint's last visit."""
    graded = [r for r in results if r.remission is not None]
    if not graded:
        return []
    best = max(RANK[r.remission or NONE] for r in graded)
    best_code = next(code for code, rank in RANK.items() if rank == best)
    out = [
        ParticipantResult(
            ctx.subject,
            BEST_RESPONSE,
            best_code,
            None,
            tuple(r.key for r in graded if r.remission == best_code),
        )
    ]
    last = endpoint.visits[-1]
    at_last = [r for r in graded if r.visit == last]
    if at_last:
        code = per_visit("proteinuria-response", last)
        value = at_last[0].remission or NONE
        out.append(ParticipantResult(ctx.subject, code, value, None, (at_last[0].key,)))
    return out
