"""Reads of published results carry their version: ETag, Last-Modified, If-None-Match -> 304,
vread of the current version (fhirclient reads, httpx looks at the headers)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime

import httpx
import pytest
from fhirclient import client as smart_client
from fhirclient.models.observation import Observation

from tests.api.api_harness import Live, make_settings, make_tokens, sample_files, start

ENDPOINT_RESULT = "https://fhir-adapter.org/fhir/StructureDefinition/endpoint-result"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    settings = make_settings(tmp_path_factory.mktemp("versions"))
    for live in start(settings, make_tokens(settings.tokens_file)):
        live.pipeline.ingest_paths(sample_files())
        yield live


def _a_result(live: Live) -> dict:
    bundle = live.pipeline.result_bundle()
    return next(e["resource"] for e in bundle["entry"]
                if ENDPOINT_RESULT in e["resource"].get("meta", {}).get("profile", []))


def test_a_read_answers_etag_and_last_modified_of_the_version(loaded: Live) -> None:
    result = _a_result(loaded)
    auth = {"Authorization": f"Bearer {loaded.research}"}
    url = f"{loaded.base}/Observation/{result['id']}"
    read = httpx.get(url, headers=auth)
    assert read.status_code == 200
    meta = read.json()["meta"]
    assert read.headers["etag"] == f'W/"{meta["versionId"]}"' == 'W/"1"'  # as first computed
    modified = parsedate_to_datetime(read.headers["last-modified"])
    stamp = meta["lastUpdated"]
    assert abs(modified.timestamp() - datetime.fromisoformat(stamp).timestamp()) < 1

    same = httpx.get(url, headers={**auth, "If-None-Match": 'W/"1"'})
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == 'W/"1"'
    other = httpx.get(url, headers={**auth, "If-None-Match": 'W/"7"'})
    assert other.status_code == 200 and other.json()["id"] == result["id"]

    vread = httpx.get(f"{url}/_history/1", headers=auth)
    assert vread.status_code == 200 and vread.json() == read.json()
    older = httpx.get(f"{url}/_history/2", headers=auth)
    assert older.status_code == 404 and "current version (1)" in older.text


def test_fhirclient_reads_the_versioned_result(loaded: Live) -> None:
    result = _a_result(loaded)
    smart = smart_client.FHIRClient(settings={"app_id": "t", "api_base": loaded.base + "/"})
    smart.server.session.headers["Authorization"] = f"Bearer {loaded.research}"
    read = Observation.read(result["id"], smart.server)
    assert read.meta.versionId == "1" and read.meta.lastUpdated is not None
    vread = smart.server.request_json(f"Observation/{result['id']}/_history/1")
    assert vread["id"] == result["id"]
