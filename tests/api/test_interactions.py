"""What the server does not do is refused as such, over real HTTP: unsupported Bundle methods
(before scopes, all at once), XML (406/415), references to nothing; HEAD, gzip, the docs' token."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome

from fhir_adapter.store.tokens import TokenFile
from tests.api.api_harness import DATA, FHIR_JSON, Live, sample_files
from tests.builders import HOSPITAL, hospital_patient, lab_creatinine, linked_bundle

JSON = {"Content-Type": FHIR_JSON}
HL7_TRANSACTION = DATA / "hl7-r4-examples" / "Bundle-bundle-transaction.json"


def _counts(live: Live) -> dict[str, int]:
    with live.pipeline.store.read() as unit:
        return dict(unit.count_by_type())


def _issues(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return list(body["issue"])


def test_hl7_transaction_example_is_refused_for_its_methods_not_for_scopes(live: Live) -> None:
    if not HL7_TRANSACTION.is_file():
        pytest.skip(f"the official HL7 examples are absent ({HL7_TRANSACTION})")
    bundle = json.loads(HL7_TRANSACTION.read_bytes())
    methods = [e["request"]["method"] for e in bundle["entry"]]
    # worked out from the file: DELETE at 5 and 6, GET at 8 and 9; entry 7 POSTs $lookup
    expected = {i for i, m in enumerate(methods) if m in ("DELETE", "GET")}
    assert expected == {5, 6, 8, 9}
    with live.client(live.ehr) as client:  # a cu token: no d or r scope could help anyway
        response = client.post("", content=HL7_TRANSACTION.read_bytes(), headers=JSON)
    assert response.status_code == 400, response.text
    issues = _issues(response)
    named = {int(i["expression"][0].split("[")[1].split("]")[0]) for i in issues}
    assert named == expected | {7}  # every one at once, the $lookup operation too
    assert all(i["code"] == "not-supported" for i in issues)
    assert any("DELETE Patient/234" in i["diagnostics"] for i in issues)
    assert _counts(live) == {}


def test_batch_answers_an_unsupported_entry_alone_and_keeps_the_others(live: Live) -> None:
    live.pipeline.enroll(HOSPITAL, "MRN-B1", "FSGS-062")
    bundle = linked_bundle(hospital_patient("MRN-B1"), kind="batch")
    bundle["entry"].append({"request": {"method": "DELETE", "url": "Patient/x"}})
    with live.client(live.ehr) as client:
        response = client.post("", json=bundle, headers=JSON)
    assert response.status_code == 200, response.text
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses == ["201 Created", "400 Bad Request"]
    assert _counts(live) == {"Patient": 1}


def test_a_literal_subject_naming_nothing_is_an_error_naming_the_element(live: Live) -> None:
    live.pipeline.enroll(HOSPITAL, "MRN-D1", "FSGS-063")
    dangling = lab_creatinine("Patient/doesnotexist", 0.8, "2024-07-01T09:00:00+02:00")
    with live.client(live.ehr) as client:
        single = client.post("/Observation", json=dangling, headers=JSON)
        assert single.status_code == 400, single.text
        assert _issues(single)[0]["expression"] == ["Observation.subject"]
        in_transaction = client.post("", json=linked_bundle(
            hospital_patient("MRN-D1"), lab_creatinine("Patient/doesnotexist", 0.8, "2024-07-01")),
            headers=JSON)
        assert in_transaction.status_code == 400
        assert _issues(in_transaction)[0]["expression"] == [
            "Bundle.entry[1].resource.subject"]
        orphan = lab_creatinine("Patient/x", 72, "2024-07-01T09:00:00+02:00", unit="/min")
        del orphan["subject"]  # a lab value without one breaks the profile: a heart rate
        orphan["code"] = {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}
        orphan["category"][0]["coding"][0]["code"] = "vital-signs"
        none = client.post("/Observation", json=orphan, headers=JSON)
    assert none.status_code == 200, none.text
    assert _issues(none)[0]["diagnostics"] == "not kept: no subject"
    assert _counts(live) == {}


def test_xml_is_refused_as_such_before_the_token_is_weighed(live: Live) -> None:
    with live.client(live.research) as client:
        by_accept = client.get("/Patient", headers={"Accept": "application/fhir+xml"})
        by_format = client.get("/Patient", params={"_format": "xml"})
        either = client.get("/metadata", headers={
            "Accept": "application/fhir+xml, application/fhir+json;q=0.5"})
        body = client.post("/Observation", content=b"<Observation/>",
                           headers={"Content-Type": "application/fhir+xml"})
    assert by_accept.status_code == 406 and _issues(by_accept)[0]["expression"] == ["Accept"]
    assert by_format.status_code == 406 and _issues(by_format)[0]["expression"] == ["_format"]
    assert either.status_code == 200
    # a research token may not write, but the format is what refuses this one
    assert body.status_code == 415 and _issues(body)[0]["code"] == "not-supported"


def test_head_and_gzip_of_a_large_answer(live: Live) -> None:
    live.pipeline.ingest_paths(sample_files())
    url = f"{live.base}/ResearchStudy/{live.pipeline.study_id()}/$endpoint-results"
    auth = {"Authorization": f"Bearer {live.research}", "Accept": FHIR_JSON}
    plain = httpx.get(url, headers={**auth, "Accept-Encoding": "identity"}, timeout=120)
    with httpx.stream("GET", url, headers={**auth, "Accept-Encoding": "gzip"},
                      timeout=120) as packed:
        assert packed.headers["content-encoding"] == "gzip"
        raw = b"".join(packed.iter_raw())
    unpacked = json.loads(gzip.decompress(raw))
    assert [e["fullUrl"] for e in unpacked["entry"]] == [
        e["fullUrl"] for e in plain.json()["entry"]]  # the same Bundle (its run times aside)
    assert len(raw) < len(plain.content) / 4  # JSON of many alike resources packs well
    study = f"{live.base}/ResearchStudy/{live.pipeline.study_id()}"
    read = httpx.get(study, headers={**auth, "Accept-Encoding": "identity"})
    head = httpx.head(study, headers={**auth, "Accept-Encoding": "identity"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"].startswith(FHIR_JSON)
    assert int(head.headers["content-length"]) == len(read.content) > 0
    assert httpx.head(url, headers=auth, timeout=120).status_code == 200
    assert httpx.head(live.base + "/Patient").status_code == 401  # HEAD needs what GET needs


def test_docs_need_a_token_once_tokens_exist(live: Live, tmp_path: Path) -> None:
    assert TokenFile(live.settings.tokens_file).configured()
    root = live.base.removesuffix("/fhir")
    for path in ("/docs", "/openapi.json"):
        assert httpx.get(root + path).status_code == 401
        answer = httpx.get(root + path, headers={"Authorization": f"Bearer {live.research}"})
        assert answer.status_code == 200


def test_fhirpy_sees_xml_and_unsupported_as_errors(live: Live) -> None:
    research = SyncFHIRClient(live.base, authorization=f"Bearer {live.research}")
    with pytest.raises(OperationOutcome):
        research.resources("Patient").search(_format="xml").fetch()
