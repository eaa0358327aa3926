"""The study summary (MeasureReport) and the Provenance of a result Bundle."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition
from fhir_adapter.trial.model import StudySummary
from fhir_adapter.version import __version__

from .observations import coded_value
from .vocab import SYSTEMS, fhir_time, identifier_id, quantity

__all__ = ["measure_report", "provenance", "provenance_id", "summary_id"]

POPULATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-population"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def summary_id(study: StudyDefinition) -> str:
    return identifier_id(SYSTEMS["study-summary"], study.id)


def _population(count: int) -> list[dict[str, Any]]:
    code = {"coding": [{"system": POPULATION_SYSTEM, "code": "initial-population"}]}
    return [{"code": code, "count": int(count)}]


def _group(code: str, population: int, counts: dict[str, int]) -> dict[str, Any]:
    group: dict[str, Any] = {
        "code": {"coding": [{"system": SYSTEMS["trial-endpoint"], "code": code}]},
        "population": _population(population),
    }
    if counts:
        strata = [
            {"value": coded_value(value), "population": _population(n)}
            for value, n in sorted(counts.items())
        ]
        group["stratifier"] = [{"code": [{"text": "value"}], "stratum": strata}]
    return group


def _median_group(
    name: str, value: Decimal | None, catalogue: AnalyteCatalogue | None
) -> dict[str, Any]:
    group: dict[str, Any] = {"code": {"text": f"median {name}"}}
    if value is not None:
        analyte = catalogue.analytes.get(name.split(".")[0]) if catalogue else None
        group["measureScore"] = quantity(value, analyte.unit if analyte else "1")
    return group


def measure_report(
    study: StudyDefinition,
    summary: StudySummary,
    *,
    date: datetime,
    period: tuple[datetime, datetime],
    catalogue: AnalyteCatalogue | None = None,
) -> dict[str, Any]:
    """First one group per visit-level endpoint (participants with a value), then one group per
    participant-level code (the population count and the count per value, as strata), then one
    group per median of the summary (``measureScore``, absent when no participant has a value)."""
    codes = sorted(set(summary.population) | set(summary.counts))
    groups = [_group(c, n, {}) for c, n in sorted(summary.participants_with_value.items())]
    groups += [_group(c, summary.population.get(c, 0), summary.counts.get(c, {})) for c in codes]
    groups += [_median_group(n, v, catalogue) for n, v in sorted(summary.medians.items())]
    report: dict[str, Any] = {
        "resourceType": "MeasureReport",
        "id": summary_id(study),
        "identifier": [{"system": SYSTEMS["study-summary"], "value": study.id}],
        "status": "complete",
        "type": "summary",
        "measure": SYSTEMS["measure"],
        "date": fhir_time(date),
        "period": {"start": fhir_time(period[0]), "end": fhir_time(period[1])},
    }
    if groups:
        report["group"] = groups
    return report


def provenance_id(targets: Iterable[str]) -> str:
    """The same targets, the same Provenance id (Provenance has no identifier to match on)."""
    digest = hashlib.sha256("\n".join(sorted(targets)).encode("utf-8")).hexdigest()
    return identifier_id(f"{SYSTEMS['study-summary']}#provenance", digest)


def provenance(targets: list[str], entities: list[str], *, recorded: datetime) -> dict[str, Any]:
    """The adapter (a contained Device) derived ``targets`` from the ``entities``."""
    device = {
        "resourceType": "Device",
        "id": "adapter",
        "deviceName": [{"name": "fhir-adapter", "type": "model-name"}],
        "version": [{"value": __version__}],
    }
    agent_type = {"coding": [{"system": PARTICIPATION, "code": "assembler"}]}
    resource: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": provenance_id(targets),
        "contained": [device],
        "target": [{"reference": r} for r in targets],
        "recorded": fhir_time(recorded),
        "activity": {"coding": [{"system": DATA_OPERATION, "code": "DERIVE"}]},
        "agent": [
            {"type": agent_type, "who": {"reference": "#adapter", "display": "fhir-adapter"}}
        ],
    }
    if entities:
        resource["entity"] = [{"role": "source", "what": {"reference": r}} for r in entities]
    return resource
