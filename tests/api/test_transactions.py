"""Transactions, batches and collections over real HTTP, checked against the store and the CLI."""

from __future__ import annotations

import json
from copy import deepcopy
from pathlib import Path
from typing import Any

import pytest

from fhir_adapter.pipeline import Pipeline
from tests.api.api_harness import FHIR_JSON, Live, make_settings, synthea_files
from tests.builders import HOSPITAL, hospital_patient, lab_creatinine, linked_bundle

JSON_HEADERS = {"Content-Type": FHIR_JSON}


def _counts(live: Live) -> dict[str, int]:
    with live.pipeline.store.read() as unit:
        return dict(unit.count_by_type())


def _synthea_patient(bundle: dict[str, Any]) -> tuple[str, str]:
    first = bundle["entry"][0]["resource"]
    assert first["resourceType"] == "Patient"
    ident = first["identifier"][0]
    return ident["system"], ident["value"]


def _measurements(pipeline: Pipeline) -> list[tuple[Any, ...]]:
    """What the endpoints see, without the adapter ids (which differ between two databases)."""
    rows = []
    for record in pipeline.records():
        for m in record.measurements:
            rows.append((record.participant.subject, m.analyte, m.value, m.unit, m.at, m.status,
                         m.comparator, m.day_precision, m.uln, m.code))
    return sorted(rows, key=repr)


def test_synthea_transaction_as_exported(live: Live, tmp_path: Path) -> None:
    path = synthea_files()[0]
    bundle = json.loads(path.read_bytes())
    system, value = _synthea_patient(bundle)
    live.pipeline.enroll(system, value, "FSGS-001")
    with live.client(live.ehr) as client:
        response = client.post("", content=path.read_bytes(), headers=JSON_HEADERS)
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["content-type"].startswith(FHIR_JSON)
    answer = response.json()
    assert answer["resourceType"] == "Bundle" and answer["type"] == "transaction-response"
    assert len(answer["entry"]) == len(bundle["entry"])

    # one answer per request, in request order: kept entries carry a Location of their own type
    kept: dict[str, str] = {}  # fullUrl -> Type/adapter id
    for request, reply in zip(bundle["entry"], answer["entry"], strict=True):
        status = reply["response"]["status"]
        assert status.split()[0] in ("200", "201"), reply
        location = reply["response"].get("location")
        if location:
            rtype, rid, history, version = location.split("/")
            assert rtype == request["resource"]["resourceType"] and history == "_history"
            assert reply["response"]["etag"] == f'W/"{version}"'
            kept[request["fullUrl"]] = f"{rtype}/{rid}"
    patient_key = kept[bundle["entry"][0]["fullUrl"]]
    assert answer["entry"][0]["response"]["status"] == "201 Created"
    assert bundle["entry"][0]["fullUrl"].startswith("urn:uuid:")

    # the representation is the resource as held: the assigned id, references rewritten
    held = [(r["response"]["location"], r["resource"]) for r in answer["entry"]
            if r.get("resource", {}).get("resourceType") == "Observation"]
    assert held, "the enrolled patient's Observations must be kept"
    for location, resource in held:
        assert f"Observation/{resource['id']}/_history/" in location
        assert resource["meta"]["versionId"] == location.rsplit("/", 1)[1]
        assert resource["subject"]["reference"] == patient_key
        assert "urn:uuid:" not in json.dumps(resource)

    # the mapped values equal those of `fhir-adapter ingest` of the same file
    other = Pipeline.from_settings(make_settings(tmp_path / "cli-side"))
    other.enroll(system, value, "FSGS-001")
    summary = other.ingest_paths([path])
    assert not summary.errors
    over_http = _measurements(live.pipeline)
    assert over_http and over_http == _measurements(other)


def test_same_transaction_twice_stores_nothing_twice(live: Live) -> None:
    path = synthea_files()[0]
    bundle = json.loads(path.read_bytes())
    live.pipeline.enroll(*_synthea_patient(bundle), "FSGS-002")
    with live.client(live.ehr) as client:
        first = client.post("", content=path.read_bytes(), headers=JSON_HEADERS)
        assert first.status_code == 200
        after_first = _counts(live)
        second = client.post("", content=path.read_bytes(), headers=JSON_HEADERS)
    assert second.status_code == 200
    assert _counts(live) == after_first
    statuses = {e["response"]["status"] for e in second.json()["entry"]}
    assert "201 Created" not in statuses
    first_locations = [e["response"].get("location") for e in first.json()["entry"]]
    second_locations = [e["response"].get("location") for e in second.json()["entry"]]
    assert first_locations == second_locations  # same ids, and no new version for unchanged data


def test_one_invalid_entry_fails_the_whole_transaction(live: Live) -> None:
    live.pipeline.enroll(HOSPITAL, "MRN-1", "FSGS-010")
    good = lab_creatinine("{ref:0}", 0.6, "2024-05-01T08:00:00+02:00")
    bad = lab_creatinine("{ref:0}", 0.7, "2024-05-02T08:00:00+02:00")
    bad["valueQuantity"]["value"] = "not a number"
    bundle = linked_bundle(hospital_patient("MRN-1"), good, bad)
    before = _counts(live)
    with live.client(live.ehr) as client:
        response = client.post("", json=bundle, headers=JSON_HEADERS)
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    expressions = [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    assert "Bundle.entry[2].resource.valueQuantity.value" in expressions, outcome
    assert _counts(live) == before


def test_batch_entries_fail_alone(live: Live) -> None:
    live.pipeline.enroll(HOSPITAL, "MRN-2", "FSGS-011")
    bad = lab_creatinine("{ref:0}", 0.7, "2024-05-02T08:00:00+02:00")
    bad["effectiveDateTime"] = "the second of May"  # not a FHIR dateTime: invalid base R4
    bundle = linked_bundle(
        hospital_patient("MRN-2"), lab_creatinine("{ref:0}", 0.6, "2024-05-01"), bad, kind="batch"
    )
    with live.client(live.ehr) as client:
        response = client.post("", json=bundle, headers=JSON_HEADERS)
    assert response.status_code == 200
    answer = response.json()
    assert answer["type"] == "batch-response"
    statuses = [e["response"]["status"].split()[0] for e in answer["entry"]]
    assert statuses[:2] == ["201", "201"] and statuses[2] == "400"
    assert answer["entry"][2]["response"]["status"] == "400 Bad Request"  # with its reason phrase
    issue = answer["entry"][2]["response"]["outcome"]["issue"][0]
    assert issue["expression"][0].endswith("effectiveDateTime")
    assert _counts(live).get("Observation") == 1


def test_collection_bundle_is_answered_as_batch(live: Live) -> None:
    live.pipeline.enroll(HOSPITAL, "MRN-3", "FSGS-012")
    bundle = linked_bundle(hospital_patient("MRN-3"), lab_creatinine("{ref:0}", 0.5, "2024-05-01"),
                         kind="collection")
    with live.client(live.ehr) as client:
        response = client.post("/Bundle", json=bundle, headers=JSON_HEADERS)
        again = client.post("/Bundle", json=deepcopy(bundle), headers=JSON_HEADERS)
    assert response.status_code == 200 and response.json()["type"] == "batch-response"
    assert [e["response"]["status"] for e in response.json()["entry"]] == ["201 Created"] * 2
    assert [e["response"]["status"] for e in again.json()["entry"]] == ["200 OK"] * 2
    assert _counts(live) == {"Patient": 1, "Observation": 1}


def test_unit_the_analyte_cannot_convert_is_422(live: Live) -> None:
    live.pipeline.enroll(HOSPITAL, "MRN-4", "FSGS-013")
    bundle = linked_bundle(
        hospital_patient("MRN-4"), lab_creatinine("{ref:0}", 3.0, "2024-05-01", unit="kg")
    )
    with live.client(live.ehr) as client:
        response = client.post("", json=bundle, headers=JSON_HEADERS)
    assert response.status_code == 422, response.text
    issues = response.json()["issue"]
    assert any("kg" in i.get("diagnostics", "") for i in issues)
    assert issues[0]["expression"] == ["Bundle.entry[1].resource.valueQuantity.code"]
    assert _counts(live) == {}


def test_ambiguous_conditional_update_is_412(live: Live) -> None:
    live.pipeline.enroll("urn:oid:9.1", "SAME", "FSGS-020")
    live.pipeline.enroll("urn:oid:9.2", "SAME", "FSGS-021")
    first, second = hospital_patient("x"), hospital_patient("y")
    first["identifier"] = [{"system": "urn:oid:9.1", "value": "SAME"}]
    second["identifier"] = [{"system": "urn:oid:9.2", "value": "SAME"}]
    with live.client(live.ehr) as client:
        assert client.post("/Patient", json=first, headers=JSON_HEADERS).status_code == 201
        assert client.post("/Patient", json=second, headers=JSON_HEADERS).status_code == 201
        response = client.put("/Patient", params={"identifier": "SAME"}, json=first,
                              headers=JSON_HEADERS)
    assert response.status_code == 412
    assert response.json()["issue"][0]["code"] == "multiple-matches"


@pytest.mark.parametrize("prefer", ["minimal", "representation", "OperationOutcome"])
def test_create_then_update_with_prefer(live: Live, prefer: str) -> None:
    live.pipeline.enroll(HOSPITAL, "MRN-5", "FSGS-014")
    headers = {**JSON_HEADERS, "Prefer": f"return={prefer}"}
    with live.client(live.ehr) as client:
        created = client.post("/Patient", json=hospital_patient("MRN-5"), headers=headers)
        again = client.post(
            "/Patient", json=hospital_patient("MRN-5", family="Renamed"), headers=headers
        )
    assert created.status_code == 201 and again.status_code == 200  # a POST of it again: update
    location = created.headers["location"]
    assert location.startswith(live.base + "/Patient/") and "/_history/1" in location
    assert created.headers["etag"] == 'W/"1"' and again.headers["etag"] == 'W/"2"'
    assert again.headers["location"].split("/_history")[0] == location.split("/_history")[0]
    if prefer == "minimal":
        assert created.content == b""
    elif prefer == "representation":
        assert created.json()["resourceType"] == "Patient"
        assert created.json()["id"] == location.split("/")[-3]
    else:
        assert created.json()["resourceType"] == "OperationOutcome"


def test_second_subject_code_for_an_enrolled_patient_is_409(live: Live) -> None:
    """One patient cannot become two participants: a conflict, and nothing changes."""
    live.pipeline.enroll(HOSPITAL, "MRN-9", "FSGS-080")
    subject = {
        "resourceType": "ResearchSubject",
        "status": "on-study",
        "identifier": [{"system": "urn:oid:1.2.3.4.5.8", "value": "FSGS-081"}],
        "study": {"reference":
                  "ResearchStudy?identifier=https://clinicaltrials.gov|NCT02382874"},
        "individual": {"reference": f"Patient?identifier={HOSPITAL}|MRN-9"},
    }
    with live.client(live.ehr) as client:
        created = client.post("/Patient", json=hospital_patient("MRN-9"), headers=JSON_HEADERS)
        assert created.status_code == 201
        before = _counts(live)
        response = client.post("/ResearchSubject", json=subject, headers=JSON_HEADERS)
    assert response.status_code == 409, response.text[:300]
    issue = response.json()["issue"][0]
    assert issue["code"] == "conflict" and "FSGS-080" in issue["diagnostics"]
    assert _counts(live) == before
    assert [r.participant.subject for r in live.pipeline.records()] == ["FSGS-080"]


def test_one_resource_twice_in_a_transaction_fails_it(live: Live) -> None:
    """FHIR: entries whose identities overlap fail the transaction (here: the same identifier)."""
    live.pipeline.enroll(HOSPITAL, "MRN-11", "FSGS-083")
    twice = linked_bundle(hospital_patient("MRN-11"),
                        lab_creatinine("{ref:0}", 0.5, "2024-01-01", ident="DUP"),
                        lab_creatinine("{ref:0}", 0.6, "2024-01-02", ident="DUP"))
    with live.client(live.ehr) as client:
        response = client.post("", json=twice, headers=JSON_HEADERS)
    assert response.status_code in (400, 409), response.text[:300]
    assert response.json()["issue"][0]["expression"][0].startswith("Bundle.entry[2]")
    assert _counts(live) == {}
