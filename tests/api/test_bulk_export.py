"""Bulk Data $export of the published results, as a client that follows the IG step by step.

Bulk Data Access IG v2, export.html: kick-off (202, absolute Content-Location), status (202 with
X-Progress and Retry-After; 429 when polled too often; 200 with the manifest and Expires),
output files (application/fhir+ndjson, with the token), DELETE (202, then 404). Expected
contents come from the whole result Bundle of the same store (``$endpoint-results``, built by
another path) and from sample_bundles/README.md (zz-corrections.json amends one result, FSGS-01's
creatinine at W2 from 0.54 to 0.47 mg/dL, and marks one entered-in-error).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from fhir_adapter.store.exports import ExportJobs
from tests.api.api_harness import Live, make_settings, make_tokens, sample_files, start

SAMPLES = Path(__file__).resolve().parents[2] / "sample_bundles"
CREA_W2 = "FSGS-01.serum-creatinine.creatinine.W2"
RESULT_SYSTEMS = ("https://fhir-adapter.org/fhir/endpoint-result",
                  "https://fhir-adapter.org/fhir/participant-endpoint")
ASYNC = {"Accept": "application/fhir+json", "Prefer": "respond-async"}


def _serve(tmp_path: Path, database_url: str | None = None) -> Iterator[Live]:
    settings = make_settings(tmp_path, database_url)
    for server in start(settings, make_tokens(settings.tokens_file)):
        server.pipeline.ingest_paths([p for p in sample_files() if p.name.startswith("p")])
        yield server


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    yield from _serve(tmp_path)


@pytest.fixture
def live_on_each_database(tmp_path: Path, store_url: str) -> Iterator[Live]:
    """SQLite and PostgreSQL: each takes its own way to an exact transactionTime."""
    yield from _serve(tmp_path, store_url)


def _headers(token: str, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **more}


def kick_off(live: Live, path: str, token: str | None = None, **params: str) -> str:
    """Step 1: the kick-off; the status URL it answers."""
    answer = httpx.get(f"{live.base}/{path}", params=params,
                       headers=_headers(token or live.research, **ASYNC))
    assert answer.status_code == 202, answer.text
    location = answer.headers["content-location"]
    assert location.startswith(live.base + "/")  # absolute
    return location


def wait_for(location: str, token: str, timeout: float = 120) -> httpx.Response:
    """Step 2: poll as Retry-After asks, until the manifest comes."""
    deadline = time.monotonic() + timeout
    while True:
        status = httpx.get(location, headers=_headers(token))
        if status.status_code != 202:
            return status
        assert status.headers["x-progress"]
        assert time.monotonic() < deadline, "the export did not complete"
        time.sleep(float(status.headers["retry-after"]))


def fetch(manifest: dict[str, Any], token: str, key: str = "output") -> dict[str, list[Any]]:
    """Step 3: every file of the manifest, parsed, by type; counts checked."""
    found: dict[str, list[Any]] = {}
    for item in manifest[key]:
        answer = httpx.get(item["url"], headers=_headers(token, Accept="application/fhir+ndjson"))
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/fhir+ndjson")
        lines = [orjson.loads(line) for line in answer.content.splitlines() if line.strip()]
        assert len(lines) == item["count"]
        assert {r["resourceType"] for r in lines} == {item["type"]}
        found.setdefault(item["type"], []).extend(lines)
    return found


def _comparable(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource without what says when it was built (the summary's date)."""
    return {k: v for k, v in resource.items()
            if not (resource["resourceType"] == "MeasureReport" and k == "date")}


def _bundle_resources(live: Live, **params: str) -> list[dict[str, Any]]:
    study = live.pipeline.study_id()
    bundle = httpx.get(f"{live.base}/ResearchStudy/{study}/$endpoint-results", params=params,
                       headers=_headers(live.research), timeout=120).json()
    return [e["resource"] for e in bundle["entry"]]


def test_group_export_step_by_step_equals_the_result_bundle(live: Live) -> None:
    study = live.pipeline.study_id()
    before = datetime.now(UTC)
    location = kick_off(live, f"Group/{study}/$export", _outputFormat="application/fhir+ndjson")
    status = wait_for(location, live.research)
    assert status.status_code == 200
    assert status.headers["content-type"].startswith("application/json")
    expires = parsedate_to_datetime(status.headers["expires"])
    assert expires > datetime.now(UTC)
    manifest = status.json()
    assert manifest["requiresAccessToken"] is True
    assert manifest["request"].startswith(f"{live.base}/Group/{study}/$export")
    moment = datetime.fromisoformat(manifest["transactionTime"])
    assert before - timedelta(seconds=1) <= moment <= datetime.now(UTC)
    assert manifest["deleted"] == [] and manifest["error"] == []

    exported = fetch(manifest, live.research)
    whole = [r for r in _bundle_resources(live) if r["resourceType"] != "Provenance"]
    by_key = {(r["resourceType"], r["id"]): _comparable(r) for rs in exported.values() for r in rs}
    assert len(by_key) == sum(len(v) for v in exported.values())  # no resource twice
    assert by_key == {(r["resourceType"], r["id"]): _comparable(r) for r in whole}
    assert len(exported["Patient"]) == 5 and len(exported["ResearchStudy"]) == 1

    group = httpx.get(f"{live.base}/Group/{study}", headers=_headers(live.research)).json()
    members = {m["entity"]["reference"] for m in group["member"]}
    assert members == {f"Patient/{p['id']}" for p in exported["Patient"]}

    # the files need the token; DELETE releases them, then the job is gone
    first = manifest["output"][0]["url"]
    assert httpx.get(first).status_code == 401
    assert httpx.get(first, headers=_headers(live.ehr)).status_code == 404  # not its job
    assert httpx.delete(location, headers=_headers(live.research)).status_code == 202
    assert httpx.get(location, headers=_headers(live.research)).status_code == 404
    assert httpx.get(first, headers=_headers(live.research)).status_code == 404


def test_since_after_a_correction_gives_exactly_what_changed(live_on_each_database: Live
                                                             ) -> None:
    live = live_on_each_database
    location = kick_off(live, "$export")
    full = wait_for(location, live.research).json()
    since = full["transactionTime"]
    live.pipeline.ingest_paths([SAMPLES / "zz-corrections.json"])

    changed = wait_for(kick_off(live, "$export", _since=since), live.research).json()
    exported = fetch(changed, live.research)
    deleted = fetch(changed, live.research, "deleted")

    moment = datetime.fromisoformat(since)
    after = [r for r in _bundle_resources(live) if r["resourceType"] == "Observation"
             and r.get("identifier", [{}])[0].get("system") in RESULT_SYSTEMS
             and datetime.fromisoformat(r["meta"]["lastUpdated"]) > moment]
    amended = {r["id"] for r in after if r["status"] != "entered-in-error"}
    withdrawn = {r["id"] for r in after if r["status"] == "entered-in-error"}
    assert withdrawn, "zz-corrections.json withdraws one result"
    results = [r for r in exported["Observation"]
               if r.get("identifier", [{}])[0].get("system") in RESULT_SYSTEMS]
    assert {r["id"] for r in results} == amended
    [crea] = [r for r in results if r["identifier"][0]["value"] == CREA_W2]
    assert crea["valueQuantity"]["value"] == 0.47 and crea["status"] == "amended"
    # amended once after its first version: version 2, as the result Bundle says it
    [in_bundle] = [r for r in after if r["id"] == crea["id"]]
    assert crea["meta"]["versionId"] == in_bundle["meta"]["versionId"] == "2"
    urls = {e["request"]["url"] for b in deleted["Bundle"] for e in b["entry"]}
    assert urls == {f"Observation/{i}" for i in withdrawn}
    assert all(b["type"] == "transaction" and b["entry"][0]["request"]["method"] == "DELETE"
               for b in deleted["Bundle"])
    assert "ResearchStudy" not in exported  # unchanged: not exported again

    # nothing written since the second export: a third one is empty
    empty = wait_for(kick_off(live, "$export", _since=changed["transactionTime"]),
                     live.research).json()
    assert empty["output"] == [] and empty["deleted"] == []


def test_type_and_type_filter(live: Live) -> None:
    whole = _bundle_resources(live)
    patient = next(r for r in whole if r["resourceType"] == "Patient")
    code = "http://loinc.org|2160-0"  # serum creatinine
    location = kick_off(live, "$export", _type="Patient,Observation",
                        _typeFilter=f"Observation?code={code}&subject=Patient/{patient['id']}")
    exported = fetch(wait_for(location, live.research).json(), live.research)
    assert set(exported) == {"Patient", "Observation"}
    expected = {r["id"] for r in whole if r["resourceType"] == "Observation"
                and r.get("subject", {}).get("reference") == f"Patient/{patient['id']}"
                and any(f"{c.get('system')}|{c.get('code')}" == code
                        for c in r.get("code", {}).get("coding", []))}
    assert expected and {r["id"] for r in exported["Observation"]} == expected
    assert len(exported["Patient"]) == 5


@pytest.mark.parametrize(("params", "headers", "status", "text"), [
    ({}, {"Accept": "application/fhir+json"}, 400, "Prefer: respond-async"),
    ({"_elements": "id"}, ASYNC, 400, "'_elements' is not supported"),
    ({"_since": "yesterday"}, ASYNC, 400, "is not an instant"),
    ({"_outputFormat": "text/csv"}, ASYNC, 400, "application/fhir+ndjson only"),
    ({"_type": "Encounter"}, ASYNC, 400, "'Encounter' is not published"),
    ({"_typeFilter": "Observation?status=final"}, ASYNC, 400, "not 'status'"),
])
def test_kickoff_refusals(live: Live, params: dict[str, str], headers: dict[str, str],
                          status: int, text: str) -> None:
    answer = httpx.get(f"{live.base}/$export", params=params,
                       headers=_headers(live.research, **headers))
    assert answer.status_code == status
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert text in outcome["issue"][0]["diagnostics"]
    assert ExportJobs(live.pipeline.store).known() == set()


def test_lenient_scope_and_group_checks(live: Live) -> None:
    lenient = {**ASYNC, "Prefer": "respond-async, handling=lenient"}
    answer = httpx.get(f"{live.base}/$export", params={"_elements": "id"},
                       headers=_headers(live.research, **lenient))
    assert answer.status_code == 202
    assert httpx.get(f"{live.base}/$export", headers=_headers(live.ehr, **ASYNC)).status_code \
        == 403
    assert httpx.get(f"{live.base}/Group/other/$export",
                     headers=_headers(live.research, **ASYNC)).status_code == 404
    assert len(ExportJobs(live.pipeline.store).known()) == 1


def test_polling_too_often_gets_429(live: Live) -> None:
    jobs = ExportJobs(live.pipeline.store)
    # a job held by a process elsewhere (fresh heartbeat): this server leaves it alone
    job = jobs.create(request=f"{live.base}/$export", parameters={}, client="research-server")
    assert jobs.claim(owner="elsewhere.example:1", stale=timedelta(hours=1), dead=set())
    jobs.progress(job.id, "elsewhere.example:1", done=3, total=5)
    location = f"{live.base}/$export-status/{job.id}"
    first = httpx.get(location, headers=_headers(live.research))
    assert first.status_code == 202 and first.headers["x-progress"].startswith("3 of 5")
    again = httpx.get(location, headers=_headers(live.research))
    assert again.status_code == 429 and int(again.headers["retry-after"]) >= 1
    time.sleep(float(first.headers["retry-after"]))
    assert httpx.get(location, headers=_headers(live.research)).status_code == 202
    assert httpx.delete(location, headers=_headers(live.research)).status_code == 202
    assert jobs.known() == set()


def test_a_result_written_during_an_export_is_in_it_or_in_the_next(tmp_path: Path,
                                                                   store_url: str) -> None:
    """Participants 1-4 stored; an export runs while participant 5 and the corrections are
    written: each result's current version is in the export or in the next ``_since`` one."""
    settings = make_settings(tmp_path, store_url)
    for live in start(settings, make_tokens(settings.tokens_file)):
        files = [p for p in sample_files() if p.name.startswith("p")]
        live.pipeline.ingest_paths(files[:4])
        writer = threading.Thread(target=live.pipeline.ingest_paths,
                                  args=([files[4], SAMPLES / "zz-corrections.json"],))
        location = kick_off(live, "$export", _type="Observation")
        writer.start()
        first = wait_for(location, live.research).json()
        writer.join()
        moment = datetime.fromisoformat(first["transactionTime"])
        second = wait_for(kick_off(live, "$export", _type="Observation",
                                   _since=first["transactionTime"]), live.research).json()
        seen: set[tuple[str, str]] = set()
        for manifest, after in ((first, False), (second, True)):
            for r in fetch(manifest, live.research).get("Observation", []):
                if r.get("identifier", [{}])[0].get("system") not in RESULT_SYSTEMS:
                    continue
                stamp = datetime.fromisoformat(r["meta"]["lastUpdated"])
                assert (stamp > moment) is after, (r["id"], stamp, moment)
                seen.add((r["id"], r["meta"]["lastUpdated"]))
            for bundle in fetch(manifest, live.research, "deleted").get("Bundle", []):
                seen |= {(e["request"]["url"].split("/")[1], "withdrawn") for e in bundle["entry"]}
        current = [r for r in _bundle_resources(live) if r["resourceType"] == "Observation"
                   and r.get("identifier", [{}])[0].get("system") in RESULT_SYSTEMS]
        for r in current:
            state = "withdrawn" if r["status"] == "entered-in-error" and \
                datetime.fromisoformat(r["meta"]["lastUpdated"]) > moment \
                else r["meta"]["lastUpdated"]
            assert (r["id"], state) in seen, r["id"]


def test_the_capability_statement_declares_the_exports(live: Live) -> None:
    statement = httpx.get(f"{live.base}/metadata").json()
    assert "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data" in \
        statement["instantiates"]
    rest = statement["rest"][0]
    assert [o["definition"] for o in rest["operation"]] == \
        ["http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"]
    [group] = [r for r in rest["resource"] if r["type"] == "Group"]
    assert [o["definition"] for o in group["operation"]] == \
        ["http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"]
    assert {i["code"] for i in group["interaction"]} == {"read", "search-type"}
    found = httpx.get(f"{live.base}/Group", headers=_headers(live.research)).json()
    assert found["total"] == 1 and found["entry"][0]["resource"]["id"] == live.pipeline.study_id()
