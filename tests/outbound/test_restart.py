"""A sender killed in the middle of a delivery, and restarted; leases; the background worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fhir_adapter.outbound import (
    FhirClient,
    PushWorker,
    RetryPolicy,
    Sender,
    Timeouts,
    start_push_worker,
)
from fhir_adapter.settings import Settings

from .conftest import TOKEN
from .fhir_server import Fault, FhirTestServer
from .standin import StandinStore, result_identifier

SENDER = Path(__file__).with_name("sender_main.py")
KEYS = ["S-1.liver-function.alt.W2", "S-1.liver-function.ast.W2", "S-2.proteinuria.upcr.M3"]


def _ingest(store: StandinStore) -> None:
    for key, value in zip(KEYS, ["41", "38", "1.9"], strict=True):
        store.put_result(key, key.split(".")[0], value)


def _sender(store: StandinStore, server: FhirTestServer) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SENDER), store.path, server.base_url, TOKEN],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for(condition: object, what: str, limit: float = 60.0) -> None:
    """Poll a condition, bounded; this is not a timing assertion, only a guard against hanging."""
    deadline = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def test_a_sender_killed_mid_delivery_and_restarted(server: FhirTestServer,
                                                    store: StandinStore) -> None:
    _ingest(store)
    stall = Fault("stall")
    server.plan.append(stall)
    first = _sender(store, server)
    try:
        assert stall.arrived.wait(60), "the sender never reached the server"
        os.kill(first.pid, signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL
    assert store.states() == {"pending": 3}  # the claim did not survive as anything else
    stall.release.set()  # the server finishes the transaction the dead sender started
    _wait_for(lambda: server.commits == 1, "the stalled transaction")

    second = _sender(store, server)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, out + err
    assert "3 delivered, 0 failed, 0 pending" in out
    assert store.states() == {"delivered": 3}
    assert server.commits == 2  # both senders wrote ...
    for key in KEYS:
        found = server.search("Observation", result_identifier(key))
        assert len(found) == 1  # ... one resource each, no duplicate
        assert found[0]["meta"]["versionId"] == "1"  # the second write changed nothing
    assert server.count("Observation") == 3


def test_a_claim_is_a_lease(store: StandinStore) -> None:
    _ingest(store)
    now = datetime.now(UTC) + timedelta(hours=1)  # the rows were queued before it
    client = FhirClient("http://127.0.0.1:9/fhir", timeouts=Timeouts(connect=1.0, read=1.0))
    dead = Sender(store, store.build, client, clock=lambda: now, lease=timedelta(minutes=5))
    assert dead.claim(due_only=True) is not None  # ... and the process dies here
    later = Sender(store, store.build, client, clock=lambda: now + timedelta(minutes=4))
    assert later.claim(due_only=True) is None  # still leased
    expired = Sender(store, store.build, client, clock=lambda: now + timedelta(minutes=5))
    batch = expired.claim(due_only=True)
    assert batch is not None and sorted(batch.groups) == sorted(KEYS)


def test_the_worker_delivers_once_the_server_is_back(store: StandinStore) -> None:
    server = FhirTestServer(token=TOKEN).start()
    server.stop()  # down while the data is ingested
    quick = RetryPolicy(base=0.05, max_delay=0.2, rng=lambda: 0.0)
    client = FhirClient(server.base_url, token=TOKEN, timeouts=Timeouts(connect=1.0, read=5.0))
    worker = PushWorker(store, store.build, client, policy=quick, interval=0.05).start()
    try:
        _ingest(store)
        worker.wake()
        _wait_for(lambda: any(r.attempts >= 2 for r in store.outbox_rows()), "two failed tries")
        assert store.states() == {"pending": 3}
        server.start()
        _wait_for(lambda: store.states() == {"delivered": 3}, "delivery")
        store.put_result(KEYS[0], "S-1", "44")
        worker.wake()
        _wait_for(lambda: store.states() == {"delivered": 4}, "the increment")
    finally:
        worker.stop()
        server.stop()
    assert not worker.running
    [alt] = server.search("Observation", result_identifier(KEYS[0]))
    assert (alt["valueQuantity"]["value"], alt["meta"]["versionId"]) == (44.0, "2")
    assert server.count("Observation") == 3


def test_no_worker_without_a_push_url(store: StandinStore) -> None:
    assert start_push_worker(store, store.build, Settings(push_url=None)) is None


def test_the_worker_from_settings(server: FhirTestServer, store: StandinStore) -> None:
    settings = Settings(push_url=server.base_url, push_token=TOKEN)
    worker = start_push_worker(store, store.build, settings, interval=0.05)
    assert worker is not None and worker.running
    try:
        _ingest(store)
        worker.wake()
        _wait_for(lambda: store.states() == {"delivered": 3}, "delivery")
    finally:
        worker.stop()
    assert server.count("Observation") == 3
