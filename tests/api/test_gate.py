"""Checks made before anything reaches the pipeline: token, scope, content type, size, JSON, depth.

The app here runs over a pipeline that fails the test if it is ever called, so each answer below
also shows that the refused request did no work.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from fhir_adapter.api import create_app
from fhir_adapter.api.security import authenticate
from fhir_adapter.errors import AuthError
from tests.api.api_harness import FHIR_JSON, make_settings, make_tokens, serve_in_thread

Gate = tuple[str, dict[str, str]]


class Untouchable:
    """A pipeline that must not be reached."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the pipeline was called ({name}) for a request that was refused")


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("gate")
    settings = make_settings(tmp).model_copy(update={"max_body_bytes": 4096, "max_json_depth": 12})
    tokens = make_tokens(settings.tokens_file)
    with serve_in_thread(create_app(settings, Untouchable())) as base:
        yield base, tokens


def _post(base: str, path: str, body: bytes, token: str | None, ctype: str = FHIR_JSON,
          **headers: str) -> httpx.Response:
    sent = {"Content-Type": ctype, **headers}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    return httpx.post(base + path, content=body, headers=sent, timeout=30)


def _issue(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith(FHIR_JSON)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Traceback" not in response.text
    return dict(outcome["issue"][0])


OBSERVATION = json.dumps({"resourceType": "Observation", "status": "final",
                          "code": {"text": "x"}}).encode()


def test_no_token_is_401_with_challenge(gate: Gate) -> None:
    base, _ = gate
    for response in (
        _post(base, "/Observation", OBSERVATION, None),
        httpx.get(base + "/Observation?code=1920-8"),
        httpx.get(base + "/ResearchStudy/x/$endpoint-results"),
    ):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        issue = _issue(response)
        assert issue["code"] == "login" and "Bearer" in issue["diagnostics"]


def test_unknown_token_and_bad_scheme_are_401(gate: Gate) -> None:
    base, tokens = gate
    assert _post(base, "/Observation", OBSERVATION, tokens["ehr"] + "0").status_code == 401
    basic = _post(base, "/Observation", OBSERVATION, None, Authorization="Basic dXNlcjpwYXNz")
    assert basic.status_code == 401 and _issue(basic)["code"] == "login"


def test_research_token_cannot_write(gate: Gate) -> None:
    base, tokens = gate
    single = _post(base, "/Observation", OBSERVATION, tokens["research"])
    assert single.status_code == 403
    issue = _issue(single)
    assert issue["code"] == "forbidden" and "system/Observation.c" in issue["diagnostics"]
    bundle = json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": []}).encode()
    assert _post(base, "", bundle, tokens["research"]).status_code == 403
    assert _post(base, "/Bundle", bundle, tokens["research"]).status_code == 403


def test_ehr_token_cannot_read_results(gate: Gate) -> None:
    base, tokens = gate
    auth = {"Authorization": f"Bearer {tokens['ehr']}"}
    for path in ("/Observation?code=1920-8", "/Patient/abc", "/ResearchStudy/x/$endpoint-results"):
        response = httpx.get(base + path, headers=auth)
        assert response.status_code == 403, path
        assert _issue(response)["code"] == "forbidden"


def test_xml_is_415(gate: Gate) -> None:
    base, tokens = gate
    xml = b'<Observation xmlns="http://hl7.org/fhir"><status value="final"/></Observation>'
    for ctype in ("application/fhir+xml", "application/xml", "text/plain"):
        response = _post(base, "/Observation", xml, tokens["ehr"], ctype=ctype)
        assert response.status_code == 415
        issue = _issue(response)
        assert issue["code"] == "not-supported" and "XML is not supported" in issue["diagnostics"]


def test_body_over_the_limit_is_413_even_streamed(gate: Gate) -> None:
    base, tokens = gate
    big = b'{"resourceType":"Observation","note":[' + b'{"text":"x"},' * 400 + b'{"text":"y"}]}'
    assert len(big) > 4096
    declared = _post(base, "/Observation", big, tokens["ehr"])
    assert declared.status_code == 413
    assert "4096" in _issue(declared)["diagnostics"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        for start in range(0, len(big), 500):
            yield big[start:start + 500]

    streamed = httpx.post(base + "/Observation", content=chunks(), timeout=30, headers={
        "Content-Type": FHIR_JSON, "Authorization": f"Bearer {tokens['ehr']}"})
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413 and _issue(streamed)["code"] == "too-costly"


def test_nesting_over_the_depth_limit_is_413_at_its_path(gate: Gate) -> None:
    base, tokens = gate
    inner: dict[str, Any] = {"url": "http://example.org/x", "valueString": "deep"}
    for _ in range(12):
        inner = {"url": "http://example.org/x", "extension": [inner]}
    body = json.dumps({"resourceType": "Observation", "extension": [inner]}).encode()
    response = _post(base, "/Observation", body, tokens["ehr"])
    assert response.status_code == 413
    issue = _issue(response)
    assert issue["expression"][0].startswith("Observation.extension[0].extension[0].extension[0]")
    very_deep = b'{"resourceType":"Observation","a":' + b"[" * 1500 + b"]" * 1500 + b"}"
    assert _post(base, "/Observation", very_deep, tokens["ehr"]).status_code == 413


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"status": "final"}', "no resourceType"),
        (b"", "no body"),
    ],
)
def test_not_a_resource_is_400(gate: Gate, body: bytes, expected: str) -> None:
    base, tokens = gate
    response = _post(base, "/Observation", body, tokens["ehr"])
    assert response.status_code == 400
    assert expected in _issue(response)["diagnostics"]


def test_wrong_type_for_the_url_is_400(gate: Gate) -> None:
    base, tokens = gate
    patient = json.dumps({"resourceType": "Patient"}).encode()
    response = _post(base, "/Observation", patient, tokens["ehr"])
    assert response.status_code == 400 and _issue(response)["expression"] == ["resourceType"]
    collection = json.dumps({"resourceType": "Bundle", "type": "collection"}).encode()
    wrong = _post(base, "", collection, tokens["ehr"])
    assert wrong.status_code == 400
    issue = _issue(wrong)
    assert issue["expression"] == ["Bundle.type"] and "POST [base]/Bundle" in issue["diagnostics"]
    transaction = json.dumps({"resourceType": "Bundle", "type": "transaction"}).encode()
    assert _post(base, "/Bundle", transaction, tokens["ehr"]).status_code == 400


def test_put_id_must_match_the_url(gate: Gate) -> None:
    base, tokens = gate
    body = json.dumps({"resourceType": "Observation", "id": "b"}).encode()
    response = httpx.put(base + "/Observation/a", content=body, headers={
        "Content-Type": FHIR_JSON, "Authorization": f"Bearer {tokens['ehr']}"})
    assert response.status_code == 400 and _issue(response)["expression"] == ["Observation.id"]
    bare = httpx.put(base + "/Observation", content=body, headers={
        "Content-Type": FHIR_JSON, "Authorization": f"Bearer {tokens['ehr']}"})
    assert bare.status_code == 400


def test_unknown_type_and_route_are_404_and_405(gate: Gate) -> None:
    base, tokens = gate
    auth = {"Authorization": f"Bearer {tokens['ehr']}", "Content-Type": FHIR_JSON}
    unknown = httpx.post(base + "/Spaceship", content=b"{}", headers=auth)
    assert unknown.status_code == 404 and "Spaceship" in _issue(unknown)["diagnostics"]
    nowhere = httpx.get(base + "/a/b/c/d", headers=auth)
    assert nowhere.status_code == 404 and _issue(nowhere)["code"] == "not-found"
    method = httpx.delete(base + "/Observation/1", headers=auth)
    assert method.status_code == 405 and _issue(method)["code"] == "not-supported"


def test_bad_since_is_400_naming_it(gate: Gate) -> None:
    base, tokens = gate
    response = httpx.get(base + "/ResearchStudy/x/$endpoint-results?_since=yesterday",
                         headers={"Authorization": f"Bearer {tokens['research']}"})
    assert response.status_code == 400 and _issue(response)["expression"] == ["_since"]


def test_metadata_needs_no_token(gate: Gate) -> None:
    base, _ = gate
    response = httpx.get(base + "/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(FHIR_JSON)
    assert response.json()["fhirVersion"] == "4.0.1"


def test_no_tokens_configured_admits_loopback_callers_only(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)  # no tokens file at all
    app = create_app(settings, Untouchable())
    with serve_in_thread(app) as base:
        response = httpx.post(base + "/Observation", content=b"<x/>",
                              headers={"Content-Type": "application/xml"})
        assert response.status_code == 415  # past authentication: the caller is on loopback
    scope = {"type": "http", "app": app, "headers": [], "client": ("10.1.2.3", 5555),
             "method": "GET", "path": "/fhir/Observation"}
    with pytest.raises(AuthError) as refused:
        authenticate(Request(scope))
    assert refused.value.http_status == 401


def test_capability_statement_tells_the_truth(gate: Gate) -> None:
    """Each declared interaction has a route; an undeclared type has none."""
    base, tokens = gate
    statement = httpx.get(base + "/metadata").json()
    assert statement["resourceType"] == "CapabilityStatement" and statement["kind"] == "instance"
    rest = statement["rest"][0]
    assert "taken as an update" in rest["documentation"]
    ehr = {"Authorization": f"Bearer {tokens['ehr']}", "Content-Type": FHIR_JSON}
    wrong_body = json.dumps({"resourceType": "Basic"}).encode()
    declared = {r["type"]: {i["code"] for i in r["interaction"]} for r in rest["resource"]}
    operations = {r["type"]: {o["name"] for o in r.get("operation", [])} for r in rest["resource"]}
    for rtype, interactions in declared.items():
        if "create" in interactions:  # the route exists: the body is refused, not the URL
            assert httpx.post(f"{base}/{rtype}", content=wrong_body, headers=ehr).status_code == 400
        if "read" in interactions:  # the route exists: the EHR token is refused by scope
            assert httpx.get(f"{base}/{rtype}/x", headers=ehr).status_code == 403
            assert httpx.get(f"{base}/{rtype}", headers=ehr).status_code == 403
        validate = httpx.post(f"{base}/{rtype}/$validate", content=wrong_body, headers=ehr)
        assert validate.status_code == (400 if "validate" in operations[rtype] else 404)
    for rtype in ("Encounter", "Claim"):
        assert rtype not in declared
        assert httpx.post(f"{base}/{rtype}", content=wrong_body, headers=ehr).status_code == 404
        assert httpx.get(f"{base}/{rtype}/x", headers=ehr).status_code == 404
