"""The transaction form, stable ids, result status, increments (`_since`) and content hashes."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from fhir.resources.R4B.bundle import Bundle

from fhir_adapter.results import ResultBuilder, ResultResource, content_hash
from tests.results.bundle_walk import observation, participant_observation, references, resources
from tests.results.result_fixtures import (
    ALT_W2_RESULT,
    BASE,
    CREATININE_W2,
    NO_INFUSION_SUBJECT,
    NOW,
    SUBJECT,
    participants,
)

T0 = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=3)


def _results(builder: ResultBuilder, endpoints) -> list[ResultResource]:
    return [r for e in endpoints for r in builder.endpoint_resources(e)]


@pytest.fixture()
def transaction(builder, endpoints, sources, summary) -> dict[str, Any]:
    return builder.bundle(
        _results(builder, endpoints),
        participants=participants(),
        sources=sources,
        summary=summary,
        form="transaction",
    )


def test_transaction_entries_are_conditional_puts(transaction):
    assert transaction["type"] == "transaction"
    Bundle.model_validate(transaction)
    conditional = 0
    for entry in transaction["entry"]:
        resource, request = entry["resource"], entry["request"]
        assert request["method"] == "PUT"
        if resource["resourceType"] == "Provenance":  # no identifier in R4: its stable id
            assert request["url"] == f"Provenance/{resource['id']}"
            continue
        first = resource["identifier"][0]
        resource_type, query = request["url"].split("?", 1)
        assert resource_type == resource["resourceType"]
        assert unquote(query) == f"identifier={first['system']}|{first['value']}"
        assert "id" not in resource  # the research server keeps its own ids
        conditional += 1
    # study, schedule, 2 x (Patient, ResearchSubject), 11 results, 12 sources, MeasureReport
    assert conditional == len(transaction["entry"]) - 1 == 2 + 4 + 11 + 12 + 1


def test_transaction_references_point_at_the_entries(transaction):
    full_urls = [e["fullUrl"] for e in transaction["entry"]]
    assert len(set(full_urls)) == len(full_urls)
    assert all(u.startswith("urn:uuid:") for u in full_urls)
    count = 0
    for entry in transaction["entry"]:
        for _, reference in references(entry["resource"]):
            assert reference.startswith("#") or reference in full_urls, reference
            count += 1
    assert count > 40


def test_ids_and_bundles_are_stable_across_runs(study, catalogue, endpoints, sources, summary):
    def build(key: bytes, form: str) -> dict[str, Any]:
        builder = ResultBuilder(study, catalogue, pseudonym_key=key, clock=lambda: NOW)
        return builder.bundle(
            _results(builder, endpoints),
            participants=participants(),
            sources=copy.deepcopy(sources),
            summary=summary,
            form=form,  # type: ignore[arg-type]
        )

    key = b"k" * 32
    for form in ("collection", "transaction"):
        assert json.dumps(build(key, form)) == json.dumps(build(key, form))
    first, second = build(key, "collection"), build(b"z" * 32, "collection")
    ids = [e["resource"]["id"] for e in first["entry"]]
    other = [e["resource"]["id"] for e in second["entry"]]
    assert (
        observation(first, CREATININE_W2.key)["id"] == observation(second, CREATININE_W2.key)["id"]
    )
    assert len(set(ids) - set(other)) == 12  # only the 12 source ids depend on the key


def test_status_and_last_updated_come_from_the_store(builder, endpoints, sources):
    state = {
        CREATININE_W2.key: ("amended", T1),
        ALT_W2_RESULT.key: ("entered-in-error", T1),
    }
    results = [
        r.with_state(*state[r.key]) if r.key in state else r.with_state("final", T0)
        for r in _results(builder, endpoints)
    ]
    bundle = builder.bundle(results, participants=participants(), sources=sources)
    amended = observation(bundle, CREATININE_W2.key)
    assert (amended["status"], amended["meta"]["lastUpdated"]) == ("amended", T1.isoformat())
    withdrawn = observation(bundle, ALT_W2_RESULT.key)
    assert withdrawn["status"] == "entered-in-error"  # a full pull lists it too
    assert withdrawn["meta"]["profile"] == [f"{BASE}/StructureDefinition/endpoint-result"]
    final = participant_observation(bundle, f"{NO_INFUSION_SUBJECT}.no-infusion")
    assert (final["status"], final["meta"]["lastUpdated"]) == ("final", T0.isoformat())
    with pytest.raises(ValueError, match="preliminary"):
        results[0].with_state("preliminary", T0)


def test_an_increment_holds_what_changed_and_what_it_needs(builder, endpoints, sources):
    changed = {ALT_W2_RESULT.key, f"{SUBJECT}.creatinine-category-w2"}
    results = [
        r.with_state("amended", T1) if r.key in changed else r.with_state("final", T0)
        for r in _results(builder, endpoints)
    ]
    bundle = builder.bundle(
        results, participants=participants(), sources=sources, since=T0 + timedelta(days=1)
    )
    keys = {
        o["identifier"][0]["value"]
        for o in resources(bundle, "Observation")
        if o["identifier"][0]["system"] != f"{BASE}/source-observation"
    }
    # the changed ones, and the W2 creatinine the changed category is derived from
    assert keys == changed | {CREATININE_W2.key}
    subjects = {p["identifier"][0]["value"] for p in resources(bundle, "Patient")}
    assert subjects == {SUBJECT}  # the unchanged participant is not repeated
    source_count = len(resources(bundle, "Observation")) - len(keys)
    assert source_count == 4  # ALT W2 and baseline, creatinine W2 and baseline
    (provenance,) = resources(bundle, "Provenance")
    assert len(provenance["target"]) == 3
    nothing = builder.bundle(results, participants=participants(), sources=sources, since=T1)
    assert {r["resourceType"] for r in (e["resource"] for e in nothing["entry"])} == {
        "ResearchStudy",
        "PlanDefinition",
    }


def _reordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(v) for v in value]
    return value


def test_content_hash_sees_content_only(builder, endpoints):
    resource = builder.endpoint_resources(endpoints[0])[0].resource
    digest = content_hash(resource)
    assert len(digest) == 64
    assert content_hash(_reordered(resource)) == digest
    restated = copy.deepcopy(resource)
    restated["status"] = "amended"
    restated["meta"]["lastUpdated"] = T1.isoformat()
    restated["meta"]["versionId"] = "7"
    assert content_hash(restated) == digest
    changed = copy.deepcopy(resource)
    changed["valueQuantity"]["value"] = 0.8
    assert content_hash(changed) != digest
    reprofiled = copy.deepcopy(resource)
    reprofiled["meta"]["profile"] = []
    assert content_hash(reprofiled) != digest
    again = builder.endpoint_resources(endpoints[0])[0].resource
    assert content_hash(again) == digest
