"""The HTTP client against the loopback FHIR server: what it sends, how it reads the answers."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from fhir_adapter.errors import ConfigError
from fhir_adapter.outbound import FhirClient, Rejected, Timeouts, Transient, check_transaction

from .conftest import TOKEN
from .fhir_server import Fault, FhirTestServer
from .standin import BASE, StandinStore, result_identifier


def _bundle(store: StandinStore) -> dict[str, Any]:
    store.put_result("S-1.liver-function.alt.W2", "S-1", "41")
    return store.build(None)


def test_a_transaction_of_conditional_puts_is_stored(
    server: FhirTestServer, store: StandinStore
) -> None:
    answer = FhirClient(server.base_url, token=TOKEN).post_transaction(_bundle(store))
    assert answer["type"] == "transaction-response"
    assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created"] * 3
    [stored] = server.search("Observation", result_identifier("S-1.liver-function.alt.W2"))
    assert stored["valueQuantity"]["value"] == 41.0
    [patient] = server.search("Patient", f"{BASE}/subject|S-1")
    assert stored["subject"] == {"reference": f"Patient/{patient['id']}"}


class Recording(requests.Session):
    """A transport that records the keyword arguments of each request and answers nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        self.calls.append({"method": method, "url": url, **kwargs})
        raise requests.ConnectionError("recorded only")


def test_what_goes_on_the_wire(store: StandinStore) -> None:
    session = Recording()
    client = FhirClient("https://research.example.org/fhir/", token="t0k", session=session,
                        timeouts=Timeouts(connect=3.0, read=40.0))
    with pytest.raises(Transient):
        client.post_transaction(_bundle(store))
    [call] = session.calls
    assert call["method"] == "POST"
    assert call["url"] == "https://research.example.org/fhir"
    assert call["verify"] is True
    assert call["timeout"] == (3.0, 40.0)
    assert call["allow_redirects"] is False
    assert call["headers"]["Authorization"] == "Bearer t0k"
    assert call["headers"]["Content-Type"].startswith("application/fhir+json")
    assert call["headers"]["Accept"] == "application/fhir+json"


def test_a_ca_bundle_replaces_but_never_disables_verification(store: StandinStore) -> None:
    session = Recording()
    client = FhirClient("https://research.example.org/fhir", session=session,
                        ca_bundle="/etc/ssl/research-ca.pem")
    with pytest.raises(Transient):
        client.post_transaction(_bundle(store))
    assert session.calls[0]["verify"] == "/etc/ssl/research-ca.pem"


@pytest.mark.parametrize("url", ["http://research.example.org/fhir", "ftp://x/fhir", "fhir", ""])
def test_plain_http_only_to_loopback(url: str) -> None:
    with pytest.raises(ConfigError):
        FhirClient(url)


@pytest.mark.parametrize(
    ("method", "url"),
    [("POST", "Observation"), ("DELETE", "Observation?identifier=s|v"),
     ("PUT", "Observation"), ("PUT", "Observation?code=x")],
)
def test_only_idempotent_puts_are_sent(method: str, url: str) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"resource": {"resourceType": "Observation"},
                         "request": {"method": method, "url": url}}]}
    with pytest.raises(ConfigError, match=r"Bundle.entry\[0\]"):
        check_transaction(bundle)


def test_a_put_to_a_stable_id_is_allowed() -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"resource": {"resourceType": "Provenance", "id": "p1"},
                         "request": {"method": "PUT", "url": "Provenance/p1"}}]}
    check_transaction(bundle)


def test_a_collection_is_not_pushed() -> None:
    with pytest.raises(ConfigError, match="transaction"):
        check_transaction({"resourceType": "Bundle", "type": "collection", "entry": []})


def test_503_is_transient_with_its_retry_after(server: FhirTestServer,
                                               store: StandinStore) -> None:
    server.plan.append(Fault("status", status=503, retry_after="7"))
    with pytest.raises(Transient) as caught:
        FhirClient(server.base_url, token=TOKEN).post_transaction(_bundle(store))
    assert caught.value.status == 503
    assert caught.value.retry_after == 7.0
    assert server.commits == 0


def test_a_wrong_token_is_rejected(server: FhirTestServer, store: StandinStore) -> None:
    with pytest.raises(Rejected) as caught:
        FhirClient(server.base_url, token="wrong").post_transaction(_bundle(store))
    assert caught.value.status == 401
    assert caught.value.outcome is not None
    assert caught.value.outcome["issue"][0]["code"] == "login"


def test_a_422_is_rejected_with_the_servers_outcome(store: StandinStore) -> None:
    refusing = FhirTestServer(token=TOKEN, rules=[
        lambda r: "no ALT above 40 here" if r.get("valueQuantity", {}).get("value", 0) > 40
        else None,
    ]).start()
    try:
        with pytest.raises(Rejected) as caught:
            FhirClient(refusing.base_url, token=TOKEN).post_transaction(_bundle(store))
    finally:
        refusing.stop()
    assert caught.value.status == 422
    assert caught.value.outcome == {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "processing", "diagnostics": "no ALT above 40 here",
         "expression": ["Bundle.entry[2].resource"]}]}
    assert "no ALT above 40 here (Bundle.entry[2].resource)" in caught.value.message
    assert refusing.count("Observation") == 0  # all or nothing


def test_an_answer_cut_mid_body_is_transient_though_the_server_committed(
    server: FhirTestServer, store: StandinStore
) -> None:
    server.plan.append(Fault("drop"))
    with pytest.raises(Transient, match="dropped|connection"):
        FhirClient(server.base_url, token=TOKEN).post_transaction(_bundle(store))
    assert server.commits == 1


def test_a_server_that_is_down_is_transient(store: StandinStore) -> None:
    gone = FhirTestServer(token=TOKEN).start()
    url = gone.base_url
    gone.stop()
    with pytest.raises(Transient, match="connection failed"):
        FhirClient(url, token=TOKEN, timeouts=Timeouts(connect=2.0, read=2.0)).post_transaction(
            _bundle(store))
