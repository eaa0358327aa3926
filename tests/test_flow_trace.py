"""The flow of docs/architecture.md, traced: a POST of one Observation passes the steps drawn
there, in their modules, doing once what is to be done once per resource."""

from __future__ import annotations

from pathlib import Path

from benchmarks.trace_post import trace_post

#: A module of each step of the drawing.
STEPS = (
    "fhir_adapter.api.write",
    "fhir_adapter.pipeline.orchestrator",
    "fhir_adapter.pipeline.writer",
    "fhir_adapter.validation.validator",
    "fhir_adapter.terminology.codes",
    "fhir_adapter.pipeline.requests",
    "fhir_adapter.store.keys",
    "fhir_adapter.fhir.references",
    "fhir_adapter.pipeline.handlers.observation",
    "fhir_adapter.mapping.mapper",
    "fhir_adapter.publication.recompute",
    "fhir_adapter.trial.endpoints.participant",
    "fhir_adapter.results.bundle",
    "fhir_adapter.store.outbox",
)


def test_a_post_of_one_observation_passes_the_drawn_steps(tmp_path: Path) -> None:
    trace = trace_post(tmp_path)
    assert trace.status == 201
    assert [step for step in STEPS if step not in trace.modules] == []
    # writing builds no result Bundle, reads no result, touches no bulk machinery
    for absent in ("fhir_adapter.publication.bundles", "fhir_adapter.publication.search",
                   "fhir_adapter.pipeline.bulk", "fhir_adapter.api.read"):
        assert absent not in trace.modules
    # once per resource: its keys, its references, its base parse; its analyte once in
    # validation and once in mapping (one coding, one catalogue look-up each)
    assert trace.count("fhir_adapter.store.keys", "identity_keys") == 1
    assert trace.count("fhir_adapter.fhir.references", "rewrite_references") == 1
    assert trace.count("fhir_adapter.fhir.parse", "parse_resource") == 1
    assert trace.count("fhir_adapter.terminology.codes", "Terminology.analytes") == 2
