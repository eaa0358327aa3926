"""eGFR computed from serum creatinine: bedside Schwartz or CKD-EPI 2021, per participant (6.4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from fhir_adapter.trial.definitions import EndpointDef
from fhir_adapter.trial.endpoints.common import Context, change_of, sources_of
from fhir_adapter.trial.endpoints.roles import CREATININE, EGFR_COMPUTED, HEIGHT
from fhir_adapter.trial.model import Measurement, VisitResult
from fhir_adapter.trial.rounding import WORK_PRECISION, publish
from fhir_adapter.trial.visits import latest_within

__all__ = [
    "BEDSIDE_SCHWARTZ",
    "CKD_EPI_2021",
    "Egfr",
    "bedside_schwartz",
    "ckd_epi_2021",
    "egfr_method",
    "egfr_results",
]

BEDSIDE_SCHWARTZ = "bedside-schwartz"
CKD_EPI_2021 = "ckd-epi-2021"

# The published CKD-EPI 2021 creatinine equation (race-free); coefficients of the equation
# itself, not protocol choices.
_CKD_EPI_FACTOR = Decimal("142")
_CKD_EPI_KAPPA = {"female": Decimal("0.7"), "male": Decimal("0.9")}
_CKD_EPI_ALPHA = {"female": Decimal("-0.241"), "male": Decimal("-0.302")}
_CKD_EPI_HIGH_EXPONENT = Decimal("-1.200")
_CKD_EPI_AGE_BASE = Decimal("0.9938")
_CKD_EPI_FEMALE = Decimal("1.012")
_ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class Egfr:
    """One computed eGFR (exact) with what it was computed from."""

    value: Decimal
    creatinine: Measurement
    height: Measurement | None = None


def ckd_epi_2021(scr_mg_dl: Decimal, age_years: int, sex: str) -> Decimal:
    """CKD-EPI 2021: 142 x min(Scr/k,1)^a x max(Scr/k,1)^-1.200 x 0.9938^age [x 1.012 female]."""
    with localcontext() as ctx:
        ctx.prec = WORK_PRECISION
        ratio = scr_mg_dl / _CKD_EPI_KAPPA[sex]
        egfr = (
            _CKD_EPI_FACTOR
            * min(ratio, _ONE) ** _CKD_EPI_ALPHA[sex]
            * max(ratio, _ONE) ** _CKD_EPI_HIGH_EXPONENT
            * _CKD_EPI_AGE_BASE**age_years
        )
        return egfr * _CKD_EPI_FEMALE if sex == "female" else egfr


def bedside_schwartz(height_cm: Decimal, scr_mg_dl: Decimal, k: Decimal) -> Decimal:
    """Bedside Schwartz: k x height cm / Scr mg/dL (k = 0.413)."""
    with localcontext() as ctx:
        ctx.prec = WORK_PRECISION
        return k * height_cm / scr_mg_dl


def egfr_method(ctx: Context) -> str | None:
    """The one formula of the participant, by age at Day 0; None when the age is unknown."""
    if ctx.age_at_day0 is None:
        return None
    return CKD_EPI_2021 if ctx.age_at_day0 >= ctx.study.adult_age_years else BEDSIDE_SCHWARTZ


def _egfr(ctx: Context, method: str, scr: Measurement | None) -> Egfr | None:
    """eGFR from one creatinine value; None when it cannot be computed.

    Not computed from a censored or non-positive creatinine, without a height in the lookback
    (bedside Schwartz), or without a sex of male/female (CKD-EPI 2021).
    """
    if scr is None or scr.censored or scr.value <= 0:
        return None
    if method == BEDSIDE_SCHWARTZ:
        height = _height(ctx, scr.at)
        if height is None:
            return None
        return Egfr(bedside_schwartz(height.value, scr.value, ctx.study.schwartz_k), scr, height)
    sex = ctx.record.participant.sex
    age = ctx.age_at(scr.at)
    if sex not in _CKD_EPI_KAPPA or age is None:
        return None
    return Egfr(ckd_epi_2021(scr.value, age, sex), scr)


def _height(ctx: Context, at: datetime) -> Measurement | None:
    found = latest_within(ctx.record.measurements, HEIGHT, at, ctx.study.anthropometry_lookback)
    return found if found is not None and found.value > 0 else None


def egfr_results(ctx: Context, endpoint: EndpointDef) -> list[VisitResult]:
    """One computed eGFR per visit of the endpoint with a creatinine value, with its baseline."""
    method = egfr_method(ctx)
    if method is None:
        return []
    baseline = _egfr(ctx, method, ctx.assignment.baseline(CREATININE))
    out: list[VisitResult] = []
    for visit in endpoint.visits:
        current = _egfr(ctx, method, ctx.assignment.value(CREATININE, visit))
        if current is not None:
            out.append(_result(ctx, endpoint, visit, method, current, baseline))
    return out


def _result(
    ctx: Context, endpoint: EndpointDef, visit: str, method: str, egfr: Egfr, base: Egfr | None
) -> VisitResult:
    delta = change_of(egfr.value, base.value) if base is not None else None
    used = (egfr.creatinine, egfr.height) + ((base.creatinine, base.height) if base else ())
    return VisitResult(
        subject=ctx.subject,
        endpoint=endpoint.code,
        analyte=EGFR_COMPUTED,
        visit=visit,
        value=publish(egfr.value, "egfr"),
        unit=ctx.unit(EGFR_COMPUTED),
        at=egfr.creatinine.at,
        baseline=publish(base.value, "egfr") if base else None,
        change=publish(delta.change, "egfr") if delta else None,
        percent_change=publish(delta.percent, "percent") if delta else None,
        fold_change=publish(delta.fold, "fold") if delta and endpoint.fold_change else None,
        egfr_method=method,
        sources=sources_of(*used),
    )
