"""`push` and `outbox` through the durable outbox, against the loopback FHIR server."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest

from fhir_adapter.errors import ConfigError
from fhir_adapter.outbound import (
    PushReport,
    RetryPolicy,
    Timeouts,
    outbox_listing,
    push,
    render_listing,
)

from .conftest import TOKEN, Sleeps
from .fhir_server import Fault, FhirTestServer
from .standin import StandinStore, result_identifier

ALT_W2 = "S-1.liver-function.alt.W2"
AST_W2 = "S-1.liver-function.ast.W2"
CREA_W2 = "S-2.serum-creatinine.creatinine.W2"


def _ingest(store: StandinStore) -> None:
    store.put_result(ALT_W2, "S-1", "41")
    store.put_result(AST_W2, "S-1", "38")
    store.put_result(CREA_W2, "S-2", "0.52")


def _push(store: StandinStore, server: FhirTestServer, sleeps: Sleeps, policy: RetryPolicy,
          **options: Any) -> PushReport:
    return push(store, store.build, to_url=server.base_url, token=TOKEN, sleep=sleeps,
                policy=policy, timeouts=Timeouts(connect=2.0, read=10.0), **options)


def _one(server: FhirTestServer, key: str) -> dict[str, Any]:
    """The server's only copy of a result (a second one would be a duplicate)."""
    found = server.search("Observation", result_identifier(key))
    assert len(found) == 1, f"{len(found)} copies of {key} on the server"
    return found[0]


def test_push_then_push_again_then_amend(server: FhirTestServer, store: StandinStore,
                                         sleeps: Sleeps, policy: RetryPolicy) -> None:
    _ingest(store)
    first = _push(store, server, sleeps, policy)
    assert (first.delivered, first.failed, first.pending, first.exit_code) == (3, 0, 0, 0)
    # one transaction: the study, two pseudonymous patients, three results
    assert (first.requests, first.resources) == (1, 6)
    assert server.count("Observation") == 3 and server.count("Patient") == 2
    assert _one(server, ALT_W2)["meta"]["versionId"] == "1"

    again = _push(store, server, sleeps, policy)
    assert (again.delivered, again.requests) == (0, 0)  # nothing changed: nothing sent
    assert server.count("Observation") == 3
    assert [_one(server, k)["meta"]["versionId"] for k in (ALT_W2, AST_W2, CREA_W2)] == \
        ["1", "1", "1"]

    store.put_result(ALT_W2, "S-1", "57")  # the source value was amended
    amended = _push(store, server, sleeps, policy)
    assert (amended.delivered, amended.requests) == (1, 1)
    alt = _one(server, ALT_W2)
    assert alt["valueQuantity"]["value"] == 57.0
    assert alt["meta"]["versionId"] == "2"  # one version more
    assert _one(server, AST_W2)["meta"]["versionId"] == "1"  # only the increment was sent
    assert server.count("Observation") == 3 and server.count("Patient") == 2
    assert sleeps == []
    assert store.states() == {"delivered": 4}


def test_all_resends_everything_without_duplicates(server: FhirTestServer, store: StandinStore,
                                                   sleeps: Sleeps, policy: RetryPolicy) -> None:
    _ingest(store)
    _push(store, server, sleeps, policy)
    report = _push(store, server, sleeps, policy, all=True)
    assert (report.enqueued, report.delivered, report.exit_code) == (3, 3, 0)
    assert "--all: 3 results queued again" in report.lines()
    # the same content again: no duplicate and, on a server that skips no-op updates, no new version
    assert [_one(server, k)["meta"]["versionId"] for k in (ALT_W2, AST_W2, CREA_W2)] == \
        ["1", "1", "1"]
    assert server.count("Observation") == 3 and server.count("Patient") == 2
    assert len(server.search("ResearchStudy", "https://clinicaltrials.gov|NCT02382874")) == 1


def test_503_then_200_is_delivered_after_the_servers_retry_after(
    server: FhirTestServer, store: StandinStore, sleeps: Sleeps, policy: RetryPolicy
) -> None:
    _ingest(store)
    server.plan += [Fault("status", status=503, retry_after="7"), Fault("status", status=503)]
    report = _push(store, server, sleeps, policy)
    assert (report.delivered, report.pending, report.exit_code) == (3, 0, 0)
    # first wait: the server's 7 s; second: the policy's second step, 2 s (no jitter)
    assert sleeps == [7.0, 2.0]
    assert (server.posts, server.commits) == (3, 1)
    assert server.count("Observation") == 3
    rows = store.outbox_rows(states=("delivered",))
    assert [r.attempts for r in rows] == [3, 3, 3]


def test_a_connection_dropped_mid_answer_is_delivered_once_in_effect(
    server: FhirTestServer, store: StandinStore, sleeps: Sleeps, policy: RetryPolicy
) -> None:
    _ingest(store)
    server.plan.append(Fault("drop"))  # the server commits, the answer is cut
    report = _push(store, server, sleeps, policy)
    assert (report.delivered, report.exit_code) == (3, 0)
    assert server.commits == 2  # sent twice ...
    assert server.count("Observation") == 3  # ... stored once: the PUTs matched by identifier
    assert _one(server, ALT_W2)["meta"]["versionId"] == "1"  # the resend changed nothing
    assert sleeps == [1.0]


def test_server_down_during_ingest_then_back(store: StandinStore, sleeps: Sleeps,
                                             policy: RetryPolicy) -> None:
    server = FhirTestServer(token=TOKEN).start()
    server.stop()  # the research server is down while data arrives
    _ingest(store)
    down = _push(store, server, sleeps, policy)
    assert (down.delivered, down.pending, down.exit_code) == (0, 3, 1)
    assert len(sleeps) == policy.max_attempts - 1  # it tried, waited, and gave up for now
    assert any("connection failed" in line for line in down.lines())
    [entry, *_] = outbox_listing(store)
    assert entry.item.state == "pending" and entry.item.attempts == policy.max_attempts
    assert entry.reason is not None and "connection failed" in entry.reason

    server.start()  # back, on the same address
    try:
        store.put_result(CREA_W2, "S-2", "0.61")  # and more changed meanwhile
        back = _push(store, server, sleeps, policy)
        assert (back.delivered, back.pending, back.exit_code) == (4, 0, 0)
        assert back.requests == 1
        assert _one(server, CREA_W2)["valueQuantity"]["value"] == 0.61
        assert _one(server, CREA_W2)["meta"]["versionId"] == "1"
        assert server.count("Observation") == 3
    finally:
        server.stop()


def _no_high_alt(resource: dict[str, Any]) -> str | None:
    ident = (resource.get("identifier") or [{}])[0].get("value", "")
    if ident == ALT_W2:
        return "ALT above the server's plausible range"
    return None


def test_a_422_is_recorded_as_failed_with_the_servers_outcome(
    store: StandinStore, sleeps: Sleeps, policy: RetryPolicy
) -> None:
    server = FhirTestServer(token=TOKEN, rules=[_no_high_alt]).start()
    try:
        _ingest(store)
        report = _push(store, server, sleeps, policy)
        assert (report.delivered, report.failed, report.pending, report.exit_code) == (2, 1, 0, 1)
        assert sleeps == []  # a refusal is not retried
        # the refused result is found by splitting the batch; the others get through
        assert server.search("Observation", result_identifier(ALT_W2)) == []
        assert _one(server, AST_W2)["valueQuantity"]["value"] == 38.0
        assert _one(server, CREA_W2)["valueQuantity"]["value"] == 0.52
        [failed] = outbox_listing(store)
        assert (failed.item.result_key, failed.item.state, failed.status) == (ALT_W2, "failed",
                                                                              422)
        assert failed.outcome is not None
        assert failed.outcome["issue"][0]["diagnostics"] == \
            "ALT above the server's plausible range"
        lines = render_listing(outbox_listing(store))
        assert lines[0].startswith(f"failed    {ALT_W2} v1 tries 1: ")
        assert "HTTP 422 ALT above the server's plausible range" in lines[0]
        assert lines[-1] == "1 failed"
        # a later push does not send it again by itself
        assert _push(store, server, sleeps, policy).requests == 0
    finally:
        server.stop()


def test_the_outbox_listing_when_all_is_delivered(server: FhirTestServer, store: StandinStore,
                                                  sleeps: Sleeps, policy: RetryPolicy) -> None:
    _ingest(store)
    assert [e.item.state for e in outbox_listing(store)] == ["pending"] * 3
    _push(store, server, sleeps, policy)
    assert outbox_listing(store) == []
    assert render_listing([]) == ["outbox: nothing pending or failed"]
    assert len(outbox_listing(store, states=("delivered",))) == 3


def test_the_error_column_is_json_with_status_and_outcome(store: StandinStore, sleeps: Sleeps,
                                                          policy: RetryPolicy) -> None:
    server = FhirTestServer(token=TOKEN, rules=[_no_high_alt]).start()
    try:
        store.put_result(ALT_W2, "S-1", "41")
        _push(store, server, sleeps, policy)
    finally:
        server.stop()
    [row] = store.outbox_rows(states=("failed",))
    assert row.last_error is not None
    stored = json.loads(row.last_error)
    assert stored["status"] == 422
    assert stored["outcome"]["resourceType"] == "OperationOutcome"


def test_push_without_a_url_is_a_configuration_error(store: StandinStore) -> None:
    with pytest.raises(ConfigError, match="FHIR_ADAPTER_PUSH_URL"):
        push(store, store.build, to_url=None)
    with pytest.raises(ConfigError, match="http"):
        push(store, partial(store.build), to_url="research.example.org")
