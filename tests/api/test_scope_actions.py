"""A write needs the scope of what it does, not of the method it came by (SMART App Launch 2.2,
scopes-and-launch-context.html, "SMART on FHIR scopes": ``c`` create, ``u`` update).

A POST whose identifier names a stored resource is an update when its content is new (the
adapter finds resources by identifier: README, "What is kept"), so a token holding only
``system/*.c`` may not make it, whether it comes alone, in a transaction, in a batch, or as a
conditional update; and a PUT that creates needs ``c``. Nothing is stored by a refused write.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_adapter.store.keys import identifier_key
from fhir_adapter.store.tokens import TokenFile
from tests.api.api_harness import FHIR_JSON, Live, make_settings, make_tokens, start

SAMPLES = Path(__file__).resolve().parents[2] / "sample_bundles"
LAB = "https://hospital.example.org/fhir/sid/lab-accession"
MRN = "https://hospital.example.org/fhir/sid/mrn"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Live, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("scopes")
    settings = make_settings(folder)
    tokens = make_tokens(settings.tokens_file)
    extra = {"create": TokenFile(settings.tokens_file).create("creator", ["system/*.c"]),
             "update": TokenFile(settings.tokens_file).create("updater", ["system/*.u"])}
    for live in start(settings, tokens):
        summary = live.pipeline.ingest_paths([SAMPLES / "p1-FSGS-01.json"])
        assert not summary.errors
        yield live, extra


def _first_creatinine() -> dict[str, Any]:
    bundle = json.loads((SAMPLES / "p1-FSGS-01.json").read_text(encoding="utf-8"))
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Observation" and \
                resource["code"]["coding"][0]["code"] == "2160-0":
            out = copy.deepcopy(resource)
            out["subject"] = {"reference": f"Patient?identifier={MRN}|13200001"}
            return out
    raise AssertionError("no creatinine in the sample")


def _stored_version(live: Live, accession: str) -> int | None:
    with live.pipeline.store.read() as unit:
        found = unit.find([identifier_key("Observation", LAB, accession)])
    return None if found is None else found.version


def _changed(accession: str | None = None, value: float = 0.99) -> dict[str, Any]:
    resource = _first_creatinine()
    if accession is not None:
        resource["identifier"] = [{"system": LAB, "value": accession}]
    resource["valueQuantity"] = {**resource["valueQuantity"], "value": value}
    return resource


def _send(live: Live, token: str, method: str, path: str, body: dict[str, Any]
          ) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": FHIR_JSON,
               "Accept": FHIR_JSON}
    return httpx.request(method, live.base + path, json=body, headers=headers, timeout=60)


def _forbidden(answer: httpx.Response, needs: str) -> None:
    assert answer.status_code == 403, answer.text[:500]
    issue = answer.json()["issue"][0]
    assert issue["code"] == "forbidden"
    assert needs in issue["diagnostics"], issue["diagnostics"]
    assert "Traceback" not in answer.text


def _entry(resource: dict[str, Any], n: int) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:5c0e0000-0000-4000-8000-{n:012d}", "resource": resource,
            "request": {"method": "POST", "url": "Observation"}}


def test_a_create_only_token_cannot_update_by_posting_a_known_identifier(
        served: tuple[Live, dict[str, str]]) -> None:
    live, tokens = served
    accession = _first_creatinine()["identifier"][0]["value"]
    before = _stored_version(live, accession)
    assert before == 1
    _forbidden(_send(live, tokens["create"], "POST", "/Observation", _changed()),
               "system/Observation.u")
    assert _stored_version(live, accession) == before
    # the token still creates; sending the same again writes nothing, so it is no update
    for status in (201, 200):
        answer = _send(live, tokens["create"], "POST", "/Observation", _changed("C-NEW-1"))
        assert answer.status_code == status, answer.text[:300]
        assert _stored_version(live, "C-NEW-1") == 1
    _forbidden(_send(live, tokens["create"], "POST", "/Observation",
                     _changed("C-NEW-1", value=0.5)), "system/Observation.u")
    assert _stored_version(live, "C-NEW-1") == 1


def test_nor_in_a_transaction_which_then_stores_nothing(
        served: tuple[Live, dict[str, str]]) -> None:
    live, tokens = served
    accession = _first_creatinine()["identifier"][0]["value"]
    before = _stored_version(live, accession)
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [_entry(_changed("C-TX-1"), 1), _entry(_changed(value=1.11), 2)]}
    answer = _send(live, tokens["create"], "POST", "", bundle)
    _forbidden(answer, "system/Observation.u")
    assert "Bundle.entry[1]" in json.dumps(answer.json())
    assert _stored_version(live, accession) == before
    assert _stored_version(live, "C-TX-1") is None  # the new one of the same transaction too


def test_nor_in_a_batch_where_the_other_entries_are_kept(
        served: tuple[Live, dict[str, str]]) -> None:
    live, tokens = served
    accession = _first_creatinine()["identifier"][0]["value"]
    before = _stored_version(live, accession)
    bundle = {"resourceType": "Bundle", "type": "batch",
              "entry": [_entry(_changed("C-BATCH-1"), 3), _entry(_changed(value=1.22), 4)]}
    answer = _send(live, tokens["create"], "POST", "", bundle)
    assert answer.status_code == 200, answer.text[:500]
    statuses = [e["response"]["status"] for e in answer.json()["entry"]]
    assert statuses[0].startswith("201") and statuses[1].startswith("403"), statuses
    assert "system/Observation.u" in json.dumps(answer.json()["entry"][1]["response"])
    assert _stored_version(live, accession) == before
    assert _stored_version(live, "C-BATCH-1") == 1


def test_nor_by_a_conditional_update_or_a_collection(
        served: tuple[Live, dict[str, str]]) -> None:
    live, tokens = served
    accession = _first_creatinine()["identifier"][0]["value"]
    before = _stored_version(live, accession)
    _forbidden(_send(live, tokens["create"], "PUT",
                     f"/Observation?identifier={LAB}|{accession}", _changed()),
               "system/Observation.u")
    entry = {**_entry(_changed(value=1.33), 5)}
    entry.pop("request")
    collection = {"resourceType": "Bundle", "type": "collection", "entry": [entry]}
    _forbidden(_send(live, tokens["create"], "POST", "/Bundle", collection), ".u")
    assert _stored_version(live, accession) == before


def test_an_update_only_token_updates_but_does_not_create(
        served: tuple[Live, dict[str, str]]) -> None:
    live, tokens = served
    accession = _first_creatinine()["identifier"][0]["value"]
    before = _stored_version(live, accession)
    assert before is not None
    new = _changed("C-PUT-1")
    _forbidden(_send(live, tokens["update"], "PUT", f"/Observation?identifier={LAB}|C-PUT-1",
                     new), "system/Observation.c")
    assert _stored_version(live, "C-PUT-1") is None
    answer = _send(live, tokens["update"], "PUT", f"/Observation?identifier={LAB}|{accession}",
                   _changed(value=0.77))
    assert answer.status_code == 200, answer.text[:300]
    assert _stored_version(live, accession) == before + 1
