"""The results pushed to a FHIR server nobody here wrote: sekmet-fhir, in this process, on loopback.

sekmet-fhir knows the search parameters of hospital workflows only; it has none for the
research types (ResearchStudy, ResearchSubject, PlanDefinition, MeasureReport), so it refuses a
conditional update ``ResearchStudy?identifier=...`` ("Unknown search parameter"). The test adds
the standard R4 ``identifier`` search parameter of those four types to its table (the R4
definitions ResearchStudy-identifier, ResearchSubject-identifier, PlanDefinition-identifier,
MeasureReport-identifier, all token searches on ``identifier``); everything else is sekmet's
own: transaction processing, conditional updates, versions, search.

Expected values come from ``sample_bundles/`` and its README (FSGS-01's creatinine at W2 is
amended from 0.54 to 0.47 mg/dL by ``zz-corrections.json``), not from the code under test.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from fhir_adapter.outbound import RetryPolicy, push
from fhir_adapter.outbound.smart import create_key, push_auth
from fhir_adapter.pipeline import Pipeline
from fhir_adapter.settings import Settings

sekmet_config = pytest.importorskip("sekmet.config", reason="sekmet-fhir is not installed "
                                    "(it comes with the test extra: pip install -e '.[test]')")
search_params = pytest.importorskip("sekmet.fhir.search_params")
sekmet_main = pytest.importorskip("sekmet.main")
uvicorn = pytest.importorskip("uvicorn")

SAMPLES = Path(__file__).resolve().parents[2] / "sample_bundles"
PARTICIPANT_FILES = sorted(SAMPLES.glob("p*-FSGS-0*.json"))
RESULT_SYSTEM = "https://fhir-adapter.org/fhir/endpoint-result"
SUBJECT_SYSTEM = "https://fhir-adapter.org/fhir/subject"
CREA_W2 = "FSGS-01.serum-creatinine.creatinine.W2"
TOKEN = "sekmet-research-token"
RESEARCH_TYPES = ("ResearchStudy", "ResearchSubject", "PlanDefinition", "MeasureReport")

pytestmark = pytest.mark.skipif(not PARTICIPANT_FILES, reason="sample_bundles/ has no Bundles")


@pytest.fixture
def sekmet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """sekmet-fhir with bearer-token auth, served by uvicorn on a free loopback port."""
    yield from _served(tmp_path, monkeypatch,
                       sekmet_config.ServerAuth(types=["bearer"], tokens=[TOKEN]))


def _served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, auth: Any) -> Iterator[str]:
    for rtype in RESEARCH_TYPES:
        known = dict(search_params.PARAMS.get(rtype, {}))
        known["identifier"] = search_params.SearchParam("identifier", "token", ("identifier",))
        monkeypatch.setitem(search_params.PARAMS, rtype, known)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}/fhir"
    settings = sekmet_config.Settings(
        base_url=base, data_dir=str(tmp_path / "sekmet"), log_inbound=False, server_auth=auth)
    server = uvicorn.Server(uvicorn.Config(sekmet_main.create_app(settings), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "sekmet-fhir did not start"
        time.sleep(0.05)
    yield base
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()


def _search(base: str, rtype: str, **params: str) -> dict[str, Any]:
    answer = requests.get(f"{base}/{rtype}", params=params, timeout=30,
                          headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text[:500]
    bundle: dict[str, Any] = answer.json()
    return bundle


def _by_identifier(base: str, rtype: str, system: str, value: str) -> list[dict[str, Any]]:
    bundle = _search(base, rtype, identifier=f"{system}|{value}")
    return [e["resource"] for e in bundle.get("entry", [])
            if e.get("search", {}).get("mode", "match") == "match"]


def _count(base: str, rtype: str) -> int:
    return int(_search(base, rtype, _summary="count")["total"])


def test_push_again_and_amend_on_sekmet(tmp_path: Path, sekmet: str) -> None:
    pipeline: Any = Pipeline.from_settings(
        Settings(database_url=f"sqlite:///{tmp_path / 'adapter.db'}"))
    pipeline.ingest_paths(PARTICIPANT_FILES)

    first = push(pipeline.outbox, pipeline.push_bundle, to_url=sekmet, token=TOKEN)
    assert (first.failed, first.pending, first.exit_code) == (0, 0, 0), first.lines()
    # every result once, found by its identifier: no duplicates on the server
    results = pipeline.result_bundle()["entry"]
    identifiers = [(i["system"], i["value"]) for e in results
                   if e["resource"]["resourceType"] == "Observation"
                   for i in e["resource"].get("identifier", [])]
    assert len(identifiers) == len(set(identifiers)) == _count(sekmet, "Observation")
    assert sum(system == RESULT_SYSTEM for system, _ in identifiers) > 400
    for subject in ("FSGS-01", "FSGS-05"):
        assert len(_by_identifier(sekmet, "Patient", SUBJECT_SYSTEM, subject)) == 1
    assert _count(sekmet, "ResearchStudy") == 1 and _count(sekmet, "MeasureReport") == 1
    [crea] = _by_identifier(sekmet, "Observation", RESULT_SYSTEM, CREA_W2)
    assert crea["valueQuantity"]["value"] == 0.54
    version = int(crea["meta"]["versionId"])

    again = push(pipeline.outbox, pipeline.push_bundle, to_url=sekmet, token=TOKEN)
    assert (again.delivered, again.requests, again.exit_code) == (0, 0, 0)
    [crea] = _by_identifier(sekmet, "Observation", RESULT_SYSTEM, CREA_W2)
    assert int(crea["meta"]["versionId"]) == version  # nothing was sent, nothing changed

    pipeline.ingest_paths([SAMPLES / "zz-corrections.json"])
    amended = push(pipeline.outbox, pipeline.push_bundle, to_url=sekmet, token=TOKEN)
    assert (amended.failed, amended.pending, amended.exit_code) == (0, 0, 0), amended.lines()
    [crea] = _by_identifier(sekmet, "Observation", RESULT_SYSTEM, CREA_W2)
    assert crea["valueQuantity"]["value"] == 0.47 and crea["status"] == "amended"
    assert int(crea["meta"]["versionId"]) == version + 1  # the server's copy: one version more
    assert _count(sekmet, "Observation") == len(identifiers)  # still one copy of each


# -- SMART Backend Services: the research server's own authorization server -------------------
CLIENT_ID = "fhir-adapter-site-7"


@pytest.fixture
def smart_sekmet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """sekmet-fhir that takes SMART access tokens of its own token endpoint for writes (the
    adapter's public key registered as a JWK Set, scopes system/*.cu), and a static token
    for the test's reads."""
    key_file = tmp_path / "keys" / "site.pem"
    jwks = create_key(key_file, "RS384")
    auth = sekmet_config.ServerAuth(
        types=["bearer", "smart"], tokens=[TOKEN], token_lifetime=300,
        smart_clients=[sekmet_config.SmartClient(client_id=CLIENT_ID, jwks=jwks,
                                                 scopes="system/*.cu")])
    for base in _served(tmp_path, monkeypatch, auth):
        yield base, key_file


def test_push_with_a_smart_access_token(tmp_path: Path, smart_sekmet: tuple[str, Path]) -> None:
    base, key_file = smart_sekmet
    pipeline: Any = Pipeline.from_settings(
        Settings(database_url=f"sqlite:///{tmp_path / 'adapter.db'}"))
    pipeline.ingest_paths(PARTICIPANT_FILES[:1])
    settings = Settings(push_url=base, push_client_id=CLIENT_ID, ehr_key_file=key_file)
    auth = push_auth(settings, base)
    assert auth is not None
    done = push(pipeline.outbox, pipeline.push_bundle, to_url=base, auth=auth)
    assert (done.failed, done.pending, done.exit_code) == (0, 0, 0), done.lines()
    assert auth.tokens_fetched == 1  # one token, found by the server's smart-configuration
    [crea] = _by_identifier(base, "Observation", RESULT_SYSTEM, CREA_W2)
    assert crea["valueQuantity"]["value"] == 0.54
    assert len(_by_identifier(base, "Patient", SUBJECT_SYSTEM, "FSGS-01")) == 1


def test_push_with_a_key_the_server_does_not_know_keeps_everything_queued(
        tmp_path: Path, smart_sekmet: tuple[str, Path]) -> None:
    base, _registered = smart_sekmet
    other = tmp_path / "keys" / "other.pem"
    create_key(other, "RS384")  # another key of the same kind: only its signature differs
    pipeline: Any = Pipeline.from_settings(
        Settings(database_url=f"sqlite:///{tmp_path / 'adapter.db'}"))
    pipeline.ingest_paths(PARTICIPANT_FILES[:1])
    queued = len(pipeline.outbox.outbox_rows(states=("pending",)))
    auth = push_auth(Settings(push_client_id=CLIENT_ID, ehr_key_file=other), base)
    done = push(pipeline.outbox, pipeline.push_bundle, to_url=base, auth=auth,
                policy=RetryPolicy(base=0.01, max_attempts=2), sleep=lambda _s: None)
    assert done.exit_code != 0 and done.delivered == 0 and done.failed == 0
    assert done.pending == queued > 0  # nothing lost: all of it waits for the next push
    assert any("invalid_client" in e for e in done.errors), done.errors
    assert _count(base, "Observation") == 0


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql",
                                                              marks=pytest.mark.postgres)])
def test_two_pushes_at_once_send_each_result_once(tmp_path: Path, sekmet: str, database: str,
                                                  request: pytest.FixtureRequest) -> None:
    """Two ``push`` processes over one store: each claims its own rows (SKIP LOCKED on
    PostgreSQL, a lease on either), so together they send each queued row once, in as many
    transactions as one push alone would."""
    import os
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'adapter.db'}" if database == "sqlite" else \
        str(request.getfixturevalue("postgres_url"))
    pipeline: Any = Pipeline.from_settings(Settings(database_url=url))
    pipeline.ingest_paths(PARTICIPANT_FILES)
    queued = len(pipeline.outbox.outbox_rows(states=("pending",)))
    pipeline.store.close()
    assert queued > 400
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_ADAPTER_")}
    env.update(FHIR_ADAPTER_DATABASE_URL=url, FHIR_ADAPTER_PUSH_TOKEN=TOKEN)
    command = [str(Path(sys.executable).with_name("fhir-adapter")), "push", "--to", sekmet]
    both = [subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in both]
    assert [p.returncode for p in both] == [0, 0], outputs
    delivered = [int(out.split(": ", 1)[1].split(" delivered")[0]) for out, _ in outputs]
    requests_made = [int(out.split("(", 1)[1].split(" requests")[0]) for out, _ in outputs]
    assert sum(delivered) == queued, outputs  # no row delivered twice
    assert sum(requests_made) == -(-queued // 100), outputs  # each batch of 100 sent once
