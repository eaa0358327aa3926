"""Subscriptions against sekmet-fhir: it notifies ``serve`` over real HTTP on loopback.

sekmet's own subscription engine sends the handshake, the event notifications (Backport
topic-based with full-resource or id-only payloads, and classic R4 rest-hooks) and heartbeats.
sekmet has no topic on Observation: the test adds one through its FHIR API (a ``Basic`` in the
R5 cross-version form, made by sekmet's own ``topic_basic``). Expected results come from the
same resources loaded by ``ingest`` into a second database, normalised as tests/test_golden.py
does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_adapter.api import create_app
from fhir_adapter.outbound.bulk_client import BulkClient, ExportRequest
from fhir_adapter.outbound.smart import SmartAuth
from fhir_adapter.pipeline import Pipeline
from fhir_adapter.pipeline.pull import DEFAULT_TYPES, pull
from fhir_adapter.pipeline.subscriptions import Subscriptions
from fhir_adapter.settings import Settings
from fhir_adapter.store.subscriptions import EhrSubscription
from tests.api.api_harness import free_port, serve_in_thread
from tests.test_golden import KEY, normalise_bundle

from .conftest import CLIENT_ID, SAMPLES, SEED_TOKEN, Ehr

backport = pytest.importorskip("sekmet.subscriptions.backport")

MRN_SYSTEM = "https://hospital.example.org/fhir/sid/mrn"
PARTICIPANT = SAMPLES / "p2-FSGS-02.json"
SCOPE = "system/*.cruds"
TOPIC = f"{backport.SEKMET_TOPIC_BASE}/observation-result"
EXE = Path(sys.executable).with_name("fhir-adapter")


def _settings(tmp_path: Path, ehr: Ehr, port: int) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'adapter.db'}", bulk_workers=0,
                    pseudonym_key=KEY, tokens_file=tmp_path / "no-tokens.json",
                    ehr_base_url=ehr.base, ehr_client_id=CLIENT_ID, ehr_key_file=ehr.key_file,
                    ehr_scope=SCOPE, public_url=f"http://127.0.0.1:{port}",
                    pull_dir=tmp_path / "pull")


def _pulled(tmp_path: Path, ehr: Ehr, settings: Settings) -> Pipeline:
    """The adapter after a pull of the EHR (its Patients and ResearchSubjects known)."""
    ehr.seed([PARTICIPANT])
    pipeline = Pipeline.from_settings(settings)
    client = BulkClient(ehr.base, SmartAuth(ehr.base, CLIENT_ID, ehr.key_file, scope=SCOPE))
    report = pull(pipeline, client, ExportRequest(DEFAULT_TYPES), workdir=tmp_path / "pull")
    assert report.summary.by_type["Observation"].kept == 167
    return pipeline


def _observation_topic(ehr: Ehr) -> None:
    ehr.post("Basic", backport.topic_basic(
        "observation-result", "Observation result", "An Observation was created or updated",
        "Observation", "true", [("patient", "Observation"), ("code", "Observation")]))


def _new_observation(n: int, value: float = 0.61) -> dict[str, Any]:
    """One more creatinine of FSGS-02 (accession NEW-n), n x 2 hours after its last one."""
    bundle = json.loads(PARTICIPANT.read_text(encoding="utf-8"))
    patient = bundle["entry"][0]["resource"]
    mrn = next(i["value"] for i in patient["identifier"] if i["system"] == MRN_SYSTEM)
    crea = next(e["resource"] for e in reversed(bundle["entry"])
                if e["resource"]["resourceType"] == "Observation"
                and e["resource"]["code"]["coding"][0]["code"] == "2160-0")
    return {**crea, "identifier": [{"system": crea["identifier"][0]["system"],
                                    "value": f"NEW-{n:04d}"}],
            "subject": {"reference": f"Patient?identifier={MRN_SYSTEM}|{mrn}"},
            "effectiveDateTime": _later(crea["effectiveDateTime"], 2 * n),
            "issued": _later(crea["issued"], 2 * n),
            "valueQuantity": {**crea["valueQuantity"], "value": value}}


def _later(moment: str, hours: int) -> str:
    return (datetime.fromisoformat(moment) + timedelta(hours=hours)).isoformat()


def _expected(tmp_path: Path, new: list[dict[str, Any]]) -> list[Any]:
    """The result entries of the participant plus ``new``, loaded by ingest."""
    name = f"want-{len(new)}.db"
    want = Pipeline.from_settings(Settings(database_url=f"sqlite:///{tmp_path / name}",
                                           bulk_workers=0, pseudonym_key=KEY))
    want.ingest_paths([PARTICIPANT])
    for resource in new:
        want.process_resource(resource, sender="cli")
    entries: list[Any] = normalise_bundle(want.result_bundle())["entry"]
    want.store.close()
    return entries


def _results(pipeline: Pipeline) -> list[Any]:
    entries: list[Any] = normalise_bundle(pipeline.result_bundle())["entry"]
    return entries


def _until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.1)


@contextmanager
def _serving(settings: Settings, pipeline: Pipeline, port: int) -> Iterator[Subscriptions]:
    app = create_app(settings, pipeline)
    with serve_in_thread(app, port):
        yield app.state.subscriptions


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``fhir-adapter ARGS`` with the settings as its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_ADAPTER_")}
    env.update({"FHIR_ADAPTER_DATABASE_URL": settings.db_url(),
                "FHIR_ADAPTER_EHR_BASE_URL": str(settings.ehr_base_url),
                "FHIR_ADAPTER_EHR_CLIENT_ID": str(settings.ehr_client_id),
                "FHIR_ADAPTER_EHR_KEY_FILE": str(settings.ehr_key_file),
                "FHIR_ADAPTER_EHR_SCOPE": settings.ehr_scope,
                "FHIR_ADAPTER_PUBLIC_URL": settings.public_url, "FHIR_ADAPTER_PSEUDONYM_KEY": KEY})
    return subprocess.run([str(EXE), *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def _row(pipeline: Pipeline, local_id: str) -> EhrSubscription:
    with pipeline.store.read() as unit:
        row = unit.subscription(local_id)
    assert row is not None
    return row


def _remote(ehr: Ehr, remote_id: str | None) -> Any:
    """sekmet's Subscription as it holds it (None once deleted)."""
    return ehr.app.state.ctx.store.read("Subscription", str(remote_id))


def _last_notification(ehr: Ehr, kind: str) -> bytes:
    """The body of the last notification of this kind sekmet sent (from its traffic log)."""
    rows = ehr.app.state.ctx.store.query(
        "SELECT req_body FROM traffic WHERE direction='outbound' AND note LIKE ? "
        "ORDER BY id DESC LIMIT 1", [f"backport {kind}%"])
    assert rows, f"sekmet sent no {kind}"
    return str(rows[0]["req_body"]).encode()


def _stored_rows(pipeline: Pipeline) -> dict[str, int]:
    counts = pipeline.store.row_counts()
    return {t: counts[t] for t in ("resource", "resource_version", "measurement",
                                   "endpoint_result", "outbox")}


@pytest.mark.parametrize("content", ["full-resource", "id-only"])
def test_topic_subscription_brings_a_new_observation_once(
        tmp_path: Path, ehr: Ehr, content: str) -> None:
    port = free_port()
    settings = _settings(tmp_path, ehr, port)
    pipeline = _pulled(tmp_path, ehr, settings)
    _observation_topic(ehr)
    new = _new_observation(1)
    expected = _expected(tmp_path, [new])
    assert _results(pipeline) != expected
    with _serving(settings, pipeline, port) as receiver:
        row, kind = receiver.subscribe(ehr.base, settings.public_url, content=content)
        assert kind == "topic" and row.criteria == TOPIC  # the EHR's topic on Observation
        _until(lambda: _row(pipeline, row.id).status == "active", 10, "the handshake")
        _until(lambda: _remote(ehr, row.remote_id)["status"] == "active", 10,
               "sekmet making it active after the handshake")
        ehr.post("Observation", new)
        _until(lambda: _results(pipeline) == expected, 5, "the new Observation in the results")
        done = _row(pipeline, row.id)
        assert done.events_processed == 1 and done.catch_ups == 0

        # the same notification again: answered, nothing stored twice
        body = _last_notification(ehr, "event-notification")
        header = _remote(ehr, row.remote_id)["channel"]["header"][0]
        secret = header.partition(":")[2].strip().removeprefix("Bearer ").strip()
        before = _stored_rows(pipeline)
        endpoint = f"{settings.public_url}/notifications/{row.id}"
        again = httpx.post(endpoint, content=body, timeout=30, headers={
            "Authorization": f"Bearer {secret}", "Content-Type": "application/fhir+json"})
        assert again.status_code == 200, again.text
        assert "already processed" in again.text
        assert _stored_rows(pipeline) == before

        # without the secret, with another, or to an unknown subscription: refused, not read
        for headers, status in (({}, 401), ({"Authorization": "Bearer wrong"}, 401)):
            refused = httpx.post(endpoint, content=body, timeout=30, headers=headers)
            assert refused.status_code == status, refused.text
            assert refused.json()["resourceType"] == "OperationOutcome"
        unknown = httpx.post(f"{settings.public_url}/notifications/{'0' * 32}", content=body,
                             headers={"Authorization": f"Bearer {secret}"}, timeout=30)
        assert unknown.status_code == 404
        assert _stored_rows(pipeline) == before
        assert _results(pipeline) == expected

        # ended: deleted on the EHR, its notifications refused even with the secret
        ended = receiver.end(row.id[:12])
        assert ended.status == "off"
        gone = httpx.get(f"{ehr.base}/Subscription/{row.remote_id}", timeout=30,
                         headers={"Authorization": f"Bearer {SEED_TOKEN}"})
        assert gone.status_code == 410  # deleted on the EHR
        late = httpx.post(endpoint, content=body, timeout=30, headers={
            "Authorization": f"Bearer {secret}", "Content-Type": "application/fhir+json"})
        assert late.status_code == 404, late.text
        assert _stored_rows(pipeline) == before


def test_notifications_missed_while_serve_was_down_are_caught_up(
        tmp_path: Path, ehr: Ehr) -> None:
    port = free_port()
    settings = _settings(tmp_path, ehr, port)
    pipeline = _pulled(tmp_path, ehr, settings)
    _observation_topic(ehr)
    ehr.settings.subscriptions.retries = 1  # sekmet gives up a delivery after one try
    news = [_new_observation(n, 0.6 + n / 100) for n in (1, 2, 3, 4)]
    with _serving(settings, pipeline, port) as receiver:
        row, _ = receiver.subscribe(ehr.base, settings.public_url, content="full-resource")
        _until(lambda: _row(pipeline, row.id).status == "active", 10, "the handshake")
    # serve is down: sekmet's three notifications fail, it puts the subscription in error
    for resource in news[:3]:
        ehr.post("Observation", resource)
    _until(lambda: _remote(ehr, row.remote_id)["status"] == "error", 15,
           "sekmet giving up the deliveries")
    assert _row(pipeline, row.id).events_processed == 0
    three = _expected(tmp_path, news[:3])
    assert _results(pipeline) != three
    with _serving(settings, pipeline, port):
        # the start-up check: $status counts 3 events, 0 processed -> caught up, asked back
        _until(lambda: _row(pipeline, row.id).events_processed == 3, 15, "the catch-up")
        assert _results(pipeline) == three and _row(pipeline, row.id).catch_ups >= 1
        _until(lambda: _remote(ehr, row.remote_id)["status"] == "active", 15,
               "the subscription asked back to active")
        _until(lambda: _row(pipeline, row.id).status == "active", 10, "the new handshake")
        ehr.post("Observation", news[3])  # the feed works again: event 4
        expected = _expected(tmp_path, news)
        _until(lambda: _results(pipeline) == expected, 5, "the 4th Observation")
        assert _row(pipeline, row.id).events_processed == 4
    listed = _cli(settings, "subscriptions", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    [shown] = json.loads(listed.stdout)
    assert (shown["id"], shown["remote_id"], shown["kind"], shown["status"]) == (
        row.id, row.remote_id, "topic", "active")
    assert shown["events_processed"] == 4 and shown["catch_ups"] >= 1
    assert "secret" not in listed.stdout.lower() and "sha256" not in listed.stdout


def test_a_heartbeat_missed_is_seen_and_caught_up(tmp_path: Path, ehr: Ehr) -> None:
    """sekmet stops its heartbeats when it holds the subscription in error (its own state,
    set through its API): two periods without one, serve asks $status, catches up, and asks
    the subscription back."""
    port = free_port()
    settings = _settings(tmp_path, ehr, port)
    pipeline = _pulled(tmp_path, ehr, settings)
    _observation_topic(ehr)
    new = _new_observation(1)
    expected = _expected(tmp_path, [new])
    with _serving(settings, pipeline, port):
        made = _cli(settings, "subscribe", "--content", "id-only", "--heartbeat", "1")
        assert made.returncode == 0, made.stderr
        found = re.search(r"subscription ([0-9a-f]{32}) created", made.stdout)
        assert found is not None, made.stdout
        row = _row(pipeline, found.group(1))
        assert row.kind == "topic" and row.remote_id and row.remote_id in made.stdout
        _until(lambda: _row(pipeline, row.id).status == "active", 10, "the handshake")
        _until(lambda: _row(pipeline, row.id).notifications >= 2, 10, "a heartbeat")
        remote = _remote(ehr, row.remote_id)
        secret = remote["channel"]["header"][0].rpartition(" ")[2]
        assert secret not in made.stdout + made.stderr  # kept hashed, never printed
        ehr.post(f"Subscription/{row.remote_id}", {**remote, "status": "error"}, method="PUT")
        ehr.post("Observation", new)  # not notified: sekmet holds the subscription in error
        _until(lambda: _results(pipeline) == expected, 10, "the catch-up after the heartbeats")
        _until(lambda: _row(pipeline, row.id).catch_ups >= 1, 5, "the catch-up counted")
        _until(lambda: _remote(ehr, row.remote_id)["status"] == "active", 10,
               "the subscription asked back to active")


@contextmanager
def _dropping_proxy(target: str, drop: int) -> Iterator[str]:
    """A stand-in for the one fault sekmet cannot make: a notification lost on the way while
    the subscription stays active. It forwards every request to ``target`` except the
    ``drop``-th event-notification, which it answers 200 without forwarding."""
    seen = {"events": 0}

    class Forward(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server spelling
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if b'"event-notification"' in body:
                seen["events"] += 1
                if seen["events"] == drop:
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            answer = httpx.post(target + self.path, content=body, timeout=60, headers={
                k: v for k, v in self.headers.items()
                if k.lower() in ("authorization", "content-type")})
            self.send_response(answer.status_code)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_event_number_gap_is_caught_up(tmp_path: Path, ehr: Ehr) -> None:
    port = free_port()
    settings = _settings(tmp_path, ehr, port)
    pipeline = _pulled(tmp_path, ehr, settings)
    _observation_topic(ehr)
    news = [_new_observation(n, 0.6 + n / 100) for n in (1, 2, 3)]
    with _serving(settings, pipeline, port) as receiver, \
            _dropping_proxy(settings.public_url, drop=2) as proxy:
        row, _ = receiver.subscribe(ehr.base, proxy, content="full-resource")
        _until(lambda: _row(pipeline, row.id).status == "active", 10, "the handshake")
        ehr.post("Observation", news[0])
        one = _expected(tmp_path, news[:1])
        _until(lambda: _results(pipeline) == one, 5, "event 1")
        ehr.post("Observation", news[1])  # event 2: lost on the way
        time.sleep(1)
        assert _results(pipeline) == one and _row(pipeline, row.id).events_processed == 1
        ehr.post("Observation", news[2])  # event 3: the gap is seen, 2 caught up
        expected = _expected(tmp_path, news)
        _until(lambda: _row(pipeline, row.id).events_processed == 3, 5, "event 3 answered")
        assert _results(pipeline) == expected
        assert _row(pipeline, row.id).catch_ups == 1


@pytest.mark.parametrize("content", ["full-resource", "empty"])
def test_a_classic_subscription_when_the_ehr_has_no_observation_topic(
        tmp_path: Path, ehr: Ehr, content: str) -> None:
    port = free_port()
    settings = _settings(tmp_path, ehr, port)
    pipeline = _pulled(tmp_path, ehr, settings)
    new = _new_observation(1)
    expected = _expected(tmp_path, [new])
    with _serving(settings, pipeline, port) as receiver:
        row, kind = receiver.subscribe(ehr.base, settings.public_url, content=content)
        assert kind == "classic" and row.criteria == "Observation?"
        _until(lambda: _remote(ehr, row.remote_id)["status"] == "active", 10, "activation")
        ehr.post("Observation", new)
        # an empty notification is followed by a search of what changed since the subscription
        # was made (less the margin): the participant's Observations seeded just before come
        # again, unchanged
        _until(lambda: _results(pipeline) == expected, 5 if content != "empty" else 30,
               "the new Observation in the results")
        done = _row(pipeline, row.id)
        assert done.notifications == 1 and done.status == "active"
        assert done.catch_ups == (1 if content == "empty" else 0)
