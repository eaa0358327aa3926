"""All endpoints of one participant: visit-level results, then participant-level results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from fhir_adapter.errors import ConfigError
from fhir_adapter.trial.definitions import AnalyteCatalogue, EndpointDef, StudyDefinition
from fhir_adapter.trial.endpoints import creatinine, liver, proteinuria, renal
from fhir_adapter.trial.endpoints.common import Context, age_in_years, measured_result
from fhir_adapter.trial.endpoints.roles import EGFR_COMPUTED, NO_INFUSION
from fhir_adapter.trial.model import (
    Measurement,
    ParticipantEndpoints,
    ParticipantRecord,
    ParticipantResult,
    VisitResult,
)
from fhir_adapter.trial.visits import assign_visits, study_date

__all__ = ["COMPUTED", "ENRICH", "PARTICIPANT_RULES", "check_rules", "compute"]

Enrich = Callable[[Context, EndpointDef, VisitResult, Measurement], VisitResult]
Computed = Callable[[Context, EndpointDef], list[VisitResult]]
ParticipantRule = Callable[[Context, EndpointDef, list[VisitResult]], list[ParticipantResult]]

#: endpoint code -> what it adds to each visit-level result of a measured analyte
ENRICH: dict[str, Enrich] = {
    "liver-function": liver.enrich,
    "serum-creatinine": creatinine.enrich,
    "proteinuria": proteinuria.enrich,
}
#: computed analyte (catalogue key) -> its visit-level results
COMPUTED: dict[str, Computed] = {EGFR_COMPUTED: renal.egfr_results}
#: endpoint code -> its participant-level results
PARTICIPANT_RULES: dict[str, ParticipantRule] = {
    "liver-function": liver.participant_results,
    "serum-creatinine": creatinine.participant_results,
    "proteinuria": proteinuria.participant_results,
}


def check_rules(study: StudyDefinition, catalogue: AnalyteCatalogue) -> None:
    """Every endpoint code and computed analyte the rules are written for is one of the study
    and of the catalogue: an endpoint renamed in study.toml fails at load, not silently."""
    missing = sorted((set(ENRICH) | set(PARTICIPANT_RULES)) - set(study.endpoints))
    if missing:
        raise ConfigError(
            f"study definition: no [endpoints.<code>] for {', '.join(missing)}, whose rules "
            f"the adapter computes (endpoints: {', '.join(sorted(study.endpoints))})")
    unknown = sorted(set(COMPUTED) - set(catalogue.analytes))
    if unknown:
        raise ConfigError(f"analyte catalogue: no analyte {', '.join(unknown)}, which the "
                          "adapter computes")


def compute(
    record: ParticipantRecord, study: StudyDefinition, catalogue: AnalyteCatalogue
) -> ParticipantEndpoints:
    """Every endpoint of one participant (TRIAL.md section 6). Pure and deterministic.

    Without Day 0 the only result is ``no-infusion`` (true). Every participant-level result
    carries the age at Day 0 in completed years (None without a birth date).
    """
    subject = record.participant.subject
    day0 = record.day0
    if day0 is None:
        return ParticipantEndpoints(subject, [], [ParticipantResult(subject, NO_INFUSION, True)])
    born = record.participant.birth_date
    ctx = Context(
        record=record,
        study=study,
        catalogue=catalogue,
        assignment=assign_visits(record.measurements, day0, study),
        age_at_day0=age_in_years(born, study_date(day0.at, study)) if born else None,
    )
    visit_results: list[VisitResult] = []
    participant_results: list[ParticipantResult] = []
    for endpoint in study.endpoints.values():
        results = _visit_results(ctx, endpoint)
        visit_results += results
        rule = PARTICIPANT_RULES.get(endpoint.code)
        if rule is not None:
            participant_results += rule(ctx, endpoint, results)
    aged = [replace(r, age_at_day0=ctx.age_at_day0) for r in participant_results]
    return ParticipantEndpoints(subject, visit_results, aged)


def _visit_results(ctx: Context, endpoint: EndpointDef) -> list[VisitResult]:
    """Analyte by analyte, visit by visit, in the order of the study definition."""
    results: list[VisitResult] = []
    enrich = ENRICH.get(endpoint.code)
    for analyte in endpoint.analytes:
        computed = COMPUTED.get(analyte)
        if computed is not None:
            results += computed(ctx, endpoint)
            continue
        for visit in endpoint.visits:
            value = ctx.assignment.value(analyte, visit)
            if value is None:
                continue
            result = measured_result(ctx, endpoint, visit, value)
            results.append(enrich(ctx, endpoint, result, value) if enrich else result)
    return results
