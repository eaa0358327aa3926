"""Research servers read results: one by one, by search, and as the $endpoint-results Bundle.

The five sample participants are loaded first; what a research token sees must carry no hospital
identifier, name, birth date or hospital resource id (RESULTS.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api.api_harness import FHIR_JSON, Live, make_settings, make_tokens, sample_files, start

BASE = "https://fhir-adapter.org/fhir"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Live, set[str]]]:
    """A server holding the sample participants, and every hospital-side string to watch for."""
    tmp = tmp_path_factory.mktemp("results")
    settings = make_settings(tmp)
    for live in start(settings, make_tokens(settings.tokens_file)):
        summary = live.pipeline.ingest_paths(sample_files())
        assert not summary.errors, [e.line() for e in summary.errors]
        yield live, _hospital_strings()


def _hospital_strings() -> set[str]:
    """Identifier values, names, birth dates and resource ids of the hospital-side samples."""
    found: set[str] = set()
    for path in sample_files():
        for entry in json.loads(path.read_bytes()).get("entry", []):
            resource = entry.get("resource") or {}
            if resource.get("id"):
                found.add(str(resource["id"]))
            for ident in resource.get("identifier", []):
                if resource.get("resourceType") == "Patient":
                    found.add(str(ident.get("value")))
            for name in resource.get("name", []):
                found.update(str(n) for n in [name.get("family"), *name.get("given", [])] if n)
            if resource.get("birthDate"):
                found.add(str(resource["birthDate"]))
    return {s for s in found if len(s) >= 4}


def _no_hospital_data(document: Any, hospital: set[str]) -> None:
    text = json.dumps(document)
    leaked = sorted(s for s in hospital if s in text)
    assert leaked == [], f"hospital data in a result: {leaked[:5]}"


def _get(live: Live, path: str, **params: str) -> Any:
    with live.client(live.research) as client:
        response = client.get(path, params=params)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith(FHIR_JSON)
    return response.json()


def test_endpoint_results_bundle(loaded: tuple[Live, set[str]]) -> None:
    live, hospital = loaded
    study = _get(live, "/ResearchStudy", identifier="https://clinicaltrials.gov|NCT02382874")
    assert study["type"] == "searchset" and study["total"] == 1
    study_id = study["entry"][0]["resource"]["id"]
    bundle = _get(live, f"/ResearchStudy/{study_id}/$endpoint-results")
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"ResearchStudy", "Patient", "ResearchSubject", "Observation"} <= kinds
    _no_hospital_data(bundle, hospital)
    patients = [e["resource"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == "Patient"]
    assert len(patients) == 5
    for patient in patients:
        assert "name" not in patient and "birthDate" not in patient and "address" not in patient
        assert [i["system"] for i in patient["identifier"]] == [f"{BASE}/subject"]
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    increment = _get(live, f"/ResearchStudy/{study_id}/$endpoint-results", _since=later)
    results = [e for e in increment.get("entry", [])
               if e["resource"]["resourceType"] == "Observation"]
    assert results == []  # nothing changed after tomorrow


def test_unknown_study_is_404(loaded: tuple[Live, set[str]]) -> None:
    live, _ = loaded
    with live.client(live.research) as client:
        response = client.get("/ResearchStudy/no-such-study/$endpoint-results")
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"


def test_read_and_search_results(loaded: tuple[Live, set[str]]) -> None:
    live, hospital = loaded
    found = _get(live, "/Observation", code="2160-0")
    assert found["type"] == "searchset" and found["total"] > 0
    _no_hospital_data(found, hospital)
    first = found["entry"][0]["resource"]
    assert found["entry"][0]["fullUrl"] == f"{live.base}/Observation/{first['id']}"
    with live.client(live.research) as client:
        read = client.get(f"/Observation/{first['id']}")
        missing = client.get("/Observation/does-not-exist")
    assert read.status_code == 200 and read.json() == first
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"
    subject = first["subject"]["reference"]
    by_subject = _get(live, "/Observation", subject=subject, code="2160-0")
    assert by_subject["total"] >= 1
    assert {e["resource"]["subject"]["reference"] for e in by_subject["entry"]} == {subject}
    ident = first["identifier"][0]
    by_identifier = _get(live, "/Observation", identifier=f"{ident['system']}|{ident['value']}")
    assert [e["resource"]["id"] for e in by_identifier["entry"]] == [first["id"]]
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _get(live, "/Observation", _lastUpdated=f"gt{future}")["total"] == 0
    assert _get(live, "/Observation", _lastUpdated=f"lt{future}")["total"] >= found["total"]


def test_unknown_search_parameter_is_400(loaded: tuple[Live, set[str]]) -> None:
    live, _ = loaded
    with live.client(live.research) as client:
        response = client.get("/Observation", params={"favourite-colour": "blue"})
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["favourite-colour"]


def test_patients_read_are_pseudonymous(loaded: tuple[Live, set[str]]) -> None:
    live, hospital = loaded
    patients = _get(live, "/Patient")
    assert patients["total"] == 5
    _no_hospital_data(patients, hospital)
    codes = sorted(e["resource"]["identifier"][0]["value"] for e in patients["entry"])
    assert codes == [f"FSGS-0{n}" for n in range(1, 6)]
