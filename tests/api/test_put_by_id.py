"""PUT [type]/[id] over real HTTP (fhirpy, httpx): kept under that id; versions, If-Match."""

from __future__ import annotations

from typing import Any

import pytest
from fhirpy import SyncFHIRClient

from tests.api.api_harness import FHIR_JSON, Live
from tests.builders import HOSPITAL, hospital_patient, lab_creatinine, linked_bundle

JSON = {"Content-Type": FHIR_JSON}


def _enrolled_patient(live: Live, mrn: str = "MRN-P1") -> str:
    """The adapter id of an enrolled participant's Patient, as the transaction answered it."""
    live.pipeline.enroll(HOSPITAL, mrn, "FSGS-061")
    with live.client(live.ehr) as client:
        answer = client.post("", json=linked_bundle(hospital_patient(mrn)), headers=JSON).json()
    location = answer["entry"][0]["response"]["location"]
    return str(location.split("/")[1])


def _lab(rid: str, subject: str, value: float, **kwargs: Any) -> dict[str, Any]:
    return {**lab_creatinine(f"Patient/{subject}", value, "2024-07-01T09:00:00+02:00", **kwargs),
            "id": rid}


def _stored(live: Live, rid: str) -> Any:
    with live.pipeline.store.read() as unit:
        return unit.get("Observation", rid)


@pytest.mark.parametrize("ident", [None, "LAB-PUT-3"])
def test_put_of_a_new_lab_observation_creates_it_under_that_id(live: Live,
                                                               ident: str | None) -> None:
    pid = _enrolled_patient(live)
    with live.client(live.ehr) as client:
        first = client.put("/Observation/lab-put-3", json=_lab("lab-put-3", pid, 0.8, ident=ident),
                           headers=JSON)
        assert first.status_code == 201, first.text
        assert first.json()["id"] == "lab-put-3"
        assert first.headers["location"].endswith("/Observation/lab-put-3/_history/1")
        assert first.headers["etag"] == 'W/"1"'
        again = client.put("/Observation/lab-put-3", json=_lab("lab-put-3", pid, 0.8, ident=ident),
                           headers=JSON)
        assert again.status_code == 200 and again.headers["etag"] == 'W/"1"'  # nothing changed
        changed = client.put("/Observation/lab-put-3",
                             json=_lab("lab-put-3", pid, 0.9, ident=ident), headers=JSON)
        assert changed.status_code == 200 and changed.headers["etag"] == 'W/"2"'
    stored = _stored(live, "lab-put-3")
    assert stored.version == 2 and stored.current["valueQuantity"]["value"] == 0.9
    with live.pipeline.store.read() as unit:
        assert unit.count_by_type()["Observation"] == 1


def test_fhirpy_save_with_an_id_finds_it_under_that_id(live: Live) -> None:
    pid = _enrolled_patient(live)
    ehr = SyncFHIRClient(live.base, authorization=f"Bearer {live.ehr}")
    observation = ehr.resource("Observation", **_lab("my-obs-1", pid, 0.7, ident="OBS-1"))
    observation.save()  # fhirpy: PUT Observation/my-obs-1, since it has an id
    assert observation.id == "my-obs-1" and observation["meta"]["versionId"] == "1"
    observation["valueQuantity"]["value"] = 0.75
    observation.save()
    assert observation.id == "my-obs-1" and observation["meta"]["versionId"] == "2"
    assert _stored(live, "my-obs-1").current["valueQuantity"]["value"] == 0.75


def test_put_whose_identifier_is_another_resources_is_409_naming_both(live: Live) -> None:
    pid = _enrolled_patient(live)
    posted = lab_creatinine(f"Patient/{pid}", 0.8, "2024-07-01T09:00:00+02:00", ident="OBS-9")
    with live.client(live.ehr) as client:
        created = client.post("/Observation", json=posted, headers=JSON)
        assert created.status_code == 201
        owner = created.json()["id"]
        clash = client.put("/Observation/obs-9", json=_lab("obs-9", pid, 0.8, ident="OBS-9"),
                           headers=JSON)
    assert clash.status_code == 409, clash.text
    issue = clash.json()["issue"][0]
    assert "Observation/obs-9" in issue["diagnostics"]
    assert f"Observation/{owner}" in issue["diagnostics"]
    assert issue["expression"] == ["Observation.identifier"]
    assert _stored(live, "obs-9") is None and _stored(live, owner).version == 1


def test_if_match_updates_the_named_version_only(live: Live) -> None:
    pid = _enrolled_patient(live)
    with live.client(live.ehr) as client:
        assert client.put("/Observation/obs-m", json=_lab("obs-m", pid, 0.8),
                          headers=JSON).status_code == 201
        for value in (0.81, 0.82, 0.83):
            client.put("/Observation/obs-m", json=_lab("obs-m", pid, value), headers=JSON)
        assert _stored(live, "obs-m").version == 4
        stale = client.put("/Observation/obs-m", json=_lab("obs-m", pid, 0.9),
                           headers={**JSON, "If-Match": 'W/"1"'})
        assert stale.status_code == 412, stale.text
        assert stale.json()["issue"][0]["expression"] == ["If-Match"]
        assert _stored(live, "obs-m").version == 4  # nothing written
        fresh = client.put("/Observation/obs-m", json=_lab("obs-m", pid, 0.9),
                           headers={**JSON, "If-Match": 'W/"4"'})
        assert fresh.status_code == 200 and fresh.headers["etag"] == 'W/"5"'
        missing = client.put("/Observation/obs-none", json=_lab("obs-none", pid, 0.9),
                             headers={**JSON, "If-Match": 'W/"1"'})
        assert missing.status_code == 412 and _stored(live, "obs-none") is None



def _put_entry(rid: str, subject: str, value: float, if_match: str) -> dict[str, Any]:
    return {"resource": _lab(rid, subject, value),
            "request": {"method": "PUT", "url": f"Observation/{rid}", "ifMatch": if_match}}


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_if_match_of_a_bundle_entry_updates_the_named_version_only(live: Live,
                                                                  kind: str) -> None:
    pid = _enrolled_patient(live)
    with live.client(live.ehr) as client:
        for value in (0.8, 0.81):  # versions 1 and 2
            client.put("/Observation/obs-e", json=_lab("obs-e", pid, value), headers=JSON)
        assert _stored(live, "obs-e").version == 2
        stale = client.post("", headers=JSON, json={
            "resourceType": "Bundle", "type": kind,
            "entry": [_put_entry("obs-e", pid, 0.9, 'W/"1"')]})
        fresh = client.post("", headers=JSON, json={
            "resourceType": "Bundle", "type": kind,
            "entry": [_put_entry("obs-e", pid, 0.95, 'W/"2"')]})
    if kind == "transaction":  # all or nothing: the transaction is the entry's answer
        assert stale.status_code == 412, stale.text
        issue = stale.json()["issue"][0]
    else:  # a batch answers each entry alone
        assert stale.status_code == 200, stale.text
        [entry] = stale.json()["entry"]
        assert entry["response"]["status"].startswith("412"), entry
        issue = entry["response"]["outcome"]["issue"][0]
    assert issue["expression"] == ["Bundle.entry[0].request.ifMatch"], issue
    assert fresh.status_code == 200, fresh.text
    [answered] = fresh.json()["entry"]
    assert answered["response"]["etag"] == 'W/"3"', answered
    stored = _stored(live, "obs-e")
    assert stored.version == 3 and stored.current["valueQuantity"]["value"] == 0.95
