"""$validate: an OperationOutcome for a resource or a Bundle; nothing is stored."""

from __future__ import annotations

from tests.api.api_harness import FHIR_JSON, Live
from tests.builders import hospital_patient, lab_creatinine, linked_bundle

HEADERS = {"Content-Type": FHIR_JSON}


def _counts(live: Live) -> dict[str, int]:
    with live.pipeline.store.read() as unit:
        return dict(unit.count_by_type())


def test_valid_resource(live: Live) -> None:
    with live.client(live.ehr) as client:
        response = client.post(
            "/Patient/$validate", json=hospital_patient("MRN-V1"), headers=HEADERS
        )
    assert response.status_code == 200
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert all(i["severity"] in ("information", "warning") for i in outcome["issue"])
    assert _counts(live) == {}


def test_invalid_resource_and_parameters_form(live: Live) -> None:
    bad = lab_creatinine("Patient/x", 1.0, "2024-01-01")
    bad["valueQuantity"]["value"] = "high"
    bad["status"] = "finished"  # not an ObservationStatus code
    parameters = {"resourceType": "Parameters",
                  "parameter": [{"name": "resource", "resource": bad}]}
    with live.client(live.ehr) as client:
        direct = client.post("/Observation/$validate", json=bad, headers=HEADERS)
        wrapped = client.post("/Observation/$validate", json=parameters, headers=HEADERS)
    for response in (direct, wrapped):
        assert response.status_code == 200
        errors = [i for i in response.json()["issue"] if i["severity"] in ("error", "fatal")]
        expressions = {e for i in errors for e in i.get("expression", [])}
        assert "Observation.valueQuantity.value" in expressions
        assert "Observation.status" in expressions
    assert _counts(live) == {}


def test_bundle_with_an_unconvertible_unit(live: Live) -> None:
    live.pipeline.enroll("urn:oid:1.2.3.4.5.6", "MRN-V2", "FSGS-050")
    bundle = linked_bundle(
        hospital_patient("MRN-V2"), lab_creatinine("{ref:0}", 3.0, "2024-01-01", unit="kg")
    )
    with live.client(live.ehr) as client:
        response = client.post("/Bundle/$validate", json=bundle, headers=HEADERS)
        no_token = client.post("/Bundle/$validate", json=bundle,
                               headers={**HEADERS, "Authorization": ""})
    assert response.status_code == 200
    errors = [i for i in response.json()["issue"] if i["severity"] == "error"]
    assert errors and any("kg" in i["diagnostics"] for i in errors)
    assert any(e.startswith("Bundle.entry[1]") for i in errors for e in i.get("expression", []))
    assert no_token.status_code == 401
    assert _counts(live) == {}


def test_validate_needs_a_write_scope_so_readers_learn_nothing_of_enrollment(live: Live) -> None:
    """The trial-patient profile applies to enrolled patients only, so $validate's answer
    tells who is enrolled: a research token (read and search) may not call it."""
    live.pipeline.enroll("urn:oid:1.2.3.4.5.6", "MRN-E1", "FSGS-060")
    enrolled, stranger = hospital_patient("MRN-E1"), hospital_patient("MRN-E2")
    for resource in (enrolled, stranger):
        del resource["birthDate"]  # trial-patient needs it; base R4 does not
    with live.client(live.research) as client:
        answers = [client.post("/Patient/$validate", json=r, headers=HEADERS)
                   for r in (enrolled, stranger)]
    assert [a.status_code for a in answers] == [403, 403]
    assert answers[0].json() == answers[1].json()  # the same answer for both
    assert "system/Patient.c" in answers[0].json()["issue"][0]["diagnostics"]
    with live.client(live.ehr) as client:  # a sender may: it sends the data anyway
        told = [client.post("/Patient/$validate", json=r, headers=HEADERS).json()
                for r in (enrolled, stranger)]
    errors = [[i for i in t["issue"] if i["severity"] == "error"] for t in told]
    assert errors[0] and not errors[1]
