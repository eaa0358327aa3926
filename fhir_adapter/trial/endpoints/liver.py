"""Liver function (safety): CTCAE v5.0 grades of ALT/AST, increase at W2, maximum grade (6.1)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from fhir_adapter.trial.definitions import EndpointDef, StudyDefinition
from fhir_adapter.trial.endpoints.common import Context
from fhir_adapter.trial.endpoints.roles import per_analyte, per_visit
from fhir_adapter.trial.model import Measurement, ParticipantResult, VisitResult
from fhir_adapter.trial.rounding import publish

__all__ = ["ctcae_grade", "enrich", "participant_results", "uln_of"]


def uln_of(m: Measurement, study: StudyDefinition) -> Decimal | None:
    """The value's own ULN (referenceRange.high), else the study default of its analyte."""
    return m.uln if m.uln is not None else study.uln_default.get(m.analyte)


def ctcae_grade(
    value: Decimal,
    uln: Decimal,
    baseline: Decimal | None,
    baseline_uln: Decimal | None,
    study: StudyDefinition,
) -> int:
    """CTCAE v5.0 grade of an ALT/AST increase.

    Baseline normal (<= its own ULN) or unknown: grade g when value > bound[g-1] x ULN.
    Baseline abnormal: grade g when value > bound[g-1] x baseline, grade 1 also when equal
    (">= 1.5 x baseline"). The bounds are the study's (mappings/study.toml [ctcae]).
    """
    normal = baseline is None or baseline_uln is None or baseline <= baseline_uln
    bounds = study.ctcae_normal if normal else study.ctcae_abnormal
    reference = uln if normal or baseline is None else baseline
    grade = 0
    for g, multiple in enumerate(bounds, start=1):
        limit = multiple * reference
        if value > limit or (g == 1 and not normal and value == limit):
            grade = g
    return grade


def _grade(m: Measurement, baseline: Measurement | None, study: StudyDefinition) -> int | None:
    uln = uln_of(m, study)
    if uln is None:
        return None
    if baseline is None:
        return ctcae_grade(m.value, uln, None, None, study)
    return ctcae_grade(m.value, uln, baseline.value, uln_of(baseline, study), study)


def enrich(ctx: Context, endpoint: EndpointDef, result: VisitResult, m: Measurement) -> VisitResult:
    """Add the ULN, the value as a multiple of it and the CTCAE grade."""
    uln = uln_of(m, ctx.study)
    if uln is None:
        return result
    return replace(
        result,
        uln=uln,
        fold_uln=publish(m.value / uln, "fold_uln") if uln else None,
        ctcae_grade=_grade(m, ctx.assignment.baseline(m.analyte), ctx.study),
    )


def _increase(results: list[VisitResult], visit: str, subject: str) -> list[ParticipantResult]:
    """True when ALT or AST at the visit is above its baseline with grade >= 1.

    Judged only from results with an uncensored value and baseline; absent when there is none.
    """
    comparable = [
        r
        for r in results
        if r.visit == visit
        and r.baseline is not None
        and r.comparator is None
        and r.baseline_comparator is None
    ]
    if not comparable:
        return []
    hits = [r for r in comparable if r.value > (r.baseline or 0) and (r.ctcae_grade or 0) >= 1]
    value = bool(hits)
    sources = tuple(r.key for r in (hits or comparable))
    code = per_visit("liver-enzyme-increase", visit)
    return [ParticipantResult(subject, code, value, None, sources)]


def _max_grade(ctx: Context, analyte: str, results: list[VisitResult]) -> list[ParticipantResult]:
    """The highest grade from Day 0 on, values outside every window included.

    ``sources``: the key of the visit-level result of each value reaching the maximum, or the
    value's own source key (``Observation/...``) when it has no visit-level result.
    """
    baseline = ctx.assignment.baseline(analyte)
    graded = [
        (g, p.measurement)
        for p in ctx.assignment.after_day0(analyte)
        if (g := _grade(p.measurement, baseline, ctx.study)) is not None
    ]
    if not graded:
        return []
    top = max(g for g, _ in graded)
    by_source = {r.sources[0]: r.key for r in results if r.analyte == analyte and r.sources}
    sources = tuple(dict.fromkeys(by_source.get(m.source, m.source) for g, m in graded if g == top))
    code = per_analyte("max-ctcae-grade", analyte)
    return [ParticipantResult(ctx.subject, code, top, None, sources)]


def participant_results(
    ctx: Context, endpoint: EndpointDef, results: list[VisitResult]
) -> list[ParticipantResult]:
    """Liver enzyme increase at each visit of the endpoint, then the maximum grade per analyte."""
    out: list[ParticipantResult] = []
    for visit in endpoint.visits:
        out += _increase(results, visit, ctx.subject)
    for analyte in endpoint.analytes:
        out += _max_grade(ctx, analyte, results)
    return out
