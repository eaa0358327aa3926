"""``pull`` against a server of faults (tests/ehr/faulty_bulk.py): 429 with Retry-After in both
forms on kick-off and status, a 503 then success on a download, a token refused mid-pull (one new
token, one retry), an error file; and the client assertion as SMART asks it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_adapter.outbound.bulk_client import BulkClient, ExportRequest
from fhir_adapter.outbound.smart import SmartAuth, create_key
from fhir_adapter.pipeline import Pipeline
from fhir_adapter.pipeline.pull import DEFAULT_TYPES, pull
from fhir_adapter.settings import Settings
from tests.export_files import SAMPLES, export_resources

from .faulty_bulk import FaultyBulkServer

CLIENT = "site-adapter"
SINCE = "2026-11-01T00:00:00Z"
P1_OBSERVATIONS = 172  # Observation entries of p1-FSGS-01.json


@pytest.mark.parametrize("algorithm", ["RS384", "ES384"])
def test_a_pull_weathers_the_faults_of_its_server(tmp_path: Path, algorithm: str) -> None:
    key_file = tmp_path / "key.pem"
    jwks = create_key(key_file, algorithm)
    by_type: dict[str, str] = {}
    for resource in export_resources([SAMPLES / "p1-FSGS-01.json"], corrected=False):
        by_type[resource["resourceType"]] = by_type.get(resource["resourceType"], "") + \
            json.dumps(resource) + "\n"
    pipeline = Pipeline.from_settings(Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}",
                                               bulk_workers=0))
    sleeps: list[float] = []
    with FaultyBulkServer(by_type, jwks, CLIENT) as server:
        auth = SmartAuth(server.base, CLIENT, key_file)
        client = BulkClient(server.base, auth, sleep=sleeps.append)
        report = pull(pipeline, client, ExportRequest(DEFAULT_TYPES, patient_level=True),
                      workdir=tmp_path / "pull")
    assert sleeps[0] == 7.0  # kick-off: 429, Retry-After: 7
    assert 20.0 <= sleeps[1] <= 30.0  # status: 429, Retry-After an HTTP-date 30 s ahead
    assert sleeps[2] == 4.0  # status: 202 with X-Progress, Retry-After: 4
    assert sleeps[3] == 1.0  # download: 503, Retry-After: 1
    assert server.tokens == ["token-1", "token-2"]  # refused mid-pull: one new token
    assert server.seen["GET /fhir/files/Observation"] == 3  # 503, 401, then the file
    assert report.server_errors == ["error: Specimen export failed: index unavailable"]
    assert report.exit_code == 1  # the export's errors make the pull's exit code 1
    assert report.summary.by_type["Observation"].kept == P1_OBSERVATIONS
    assert report.summary.errors == []
    assert server.deleted
    for claims, header in zip(server.assertions, server.headers, strict=True):
        assert header["alg"] == algorithm and header["typ"] == "JWT"
        assert header["kid"] == jwks["keys"][0]["kid"]
        assert claims["iss"] == claims["sub"] == CLIENT
        assert claims["aud"] == f"{server.root}/auth/token"
        assert 0 < claims["exp"] - claims["iat"] <= 300
    assert len({c["jti"] for c in server.assertions}) == 2


def test_a_kick_off_by_post_and_a_deleted_file(tmp_path: Path) -> None:
    """An EHR that takes the kick-off only as a POST with Parameters (GET: 405), and whose
    manifest says that an Observation was deleted: it is withdrawn (kept, no longer counted)."""
    key_file = tmp_path / "key.pem"
    jwks = create_key(key_file, "ES384")
    resources = export_resources([SAMPLES / "p1-FSGS-01.json"], corrected=False)
    by_type: dict[str, str] = {}
    for resource in resources:
        by_type[resource["resourceType"]] = by_type.get(resource["resourceType"], "") + \
            json.dumps(resource) + "\n"
    gone = next(r for r in resources if r["resourceType"] == "Observation"
                and r["code"]["coding"][0]["code"] == "2160-0")
    pipeline = Pipeline.from_settings(Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}",
                                               bulk_workers=0))
    with FaultyBulkServer(by_type, jwks, CLIENT, deleted=[f"Observation/{gone['id']}"],
                          post_only=True) as server:
        client = BulkClient(server.base, SmartAuth(server.base, CLIENT, key_file),
                            sleep=lambda _: None)
        report = pull(pipeline, client, ExportRequest(("Patient", "Observation"),
                                                      patient_level=True, since=SINCE),
                      workdir=tmp_path / "pull")
    assert server.kick_off_bodies == [{"resourceType": "Parameters", "parameter": [
        {"name": "_type", "valueString": "Patient,Observation"},
        {"name": "_since", "valueString": SINCE}]}]
    assert (report.withdrawn, report.deleted_unknown) == (1, 0)
    [record] = pipeline.records()
    withdrawn = [m for m in record.measurements if not m.counts]
    assert len(withdrawn) == 1 and withdrawn[0].status == "entered-in-error"
    assert len(record.measurements) == P1_OBSERVATIONS
