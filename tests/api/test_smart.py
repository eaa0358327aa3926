"""SMART Backend Services against the adapter's token endpoint, with sekmet-fhir as the client.

sekmet-fhir (written elsewhere) discovers the token endpoint from
``/.well-known/smart-configuration``, signs a ``private_key_jwt`` with its own key and calls
the FHIR API with the token it gets; its own server publishes the public key set that the
adapter fetches for a client registered by ``--jwks-url``. The refusals are assertions signed
with the same keys by PyJWT, each breaking one rule of SMART App Launch 2.2 backend-services.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn

from fhir_adapter.store.clients import ClientRegistry
from tests.api.api_harness import Live, make_settings, make_tokens, start

keys = pytest.importorskip("sekmet.auth.keys", reason="sekmet-fhir is not installed")
sekmet_config = pytest.importorskip("sekmet.config")
sekmet_peer = pytest.importorskip("sekmet.client.peer")
sekmet_main = pytest.importorskip("sekmet.main")

EXE = Path(sys.executable).with_name("fhir-adapter")
ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    settings = make_settings(tmp_path)
    yield from start(settings, make_tokens(settings.tokens_file))


def _key(tmp_path: Path, alg: str) -> tuple[Path, dict[str, Any]]:
    key = keys.generate_private_key(alg)
    path = tmp_path / f"client-{alg}.pem"
    keys.save_private_key(key, str(path))
    return path, keys.public_jwk(key, alg)


def _cli(live: Live, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_ADAPTER_")}
    env["FHIR_ADAPTER_DATABASE_URL"] = live.settings.db_url()
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def _register(live: Live, tmp_path: Path, name: str, jwk: dict[str, Any], scope: str) -> None:
    jwks_file = tmp_path / f"{name}.jwks.json"
    jwks_file.write_text(json.dumps({"keys": [jwk]}))
    done = _cli(live, "client", "add", "--name", name, "--jwks-file", str(jwks_file),
                "--scope", scope)
    assert done.returncode == 0, done.stderr


def _sekmet_client(live: Live, name: str, key_path: Path, alg: str,
                   scope: str) -> Any:
    peer = sekmet_config.Peer(base_url=live.base, auth=sekmet_config.PeerAuth(
        type="smart", client_id=name, private_key_path=str(key_path), alg=alg, scope=scope))
    return sekmet_peer.PeerClient(name, peer)


def _root(live: Live) -> str:
    return live.base.removesuffix("/fhir")


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_sekmet_gets_a_token_and_reads_results(live: Live, tmp_path: Path, alg: str) -> None:
    path, jwk = _key(tmp_path, alg)
    _register(live, tmp_path, "registry-a", jwk, "system/*.rs")
    client = _sekmet_client(live, "registry-a", path, alg, "system/*.read")
    try:
        answer = client.request("GET", "ResearchStudy")
        assert answer.status == 200, answer.text
        assert answer.body["resourceType"] == "Bundle"
        granted = client.auth.last_token_response
        # system/*.read asked, system/*.rs registered: read and search granted, nothing more
        assert granted["scope"] == "system/*.rs" and granted["token_type"] == "bearer"
        assert 0 < granted["expires_in"] <= 300
        token = client.auth.headers()["Authorization"]
        write = httpx.post(f"{live.base}/Patient", json={"resourceType": "Patient"},
                           headers={"Authorization": token})
        assert write.status_code == 403  # granted scopes are checked on every request
    finally:
        client.close()


def test_discovery_says_what_the_server_does(live: Live) -> None:
    for url in (f"{live.base}/.well-known/smart-configuration",
                f"{_root(live)}/.well-known/smart-configuration"):
        config = httpx.get(url).json()
        assert config["token_endpoint"] == f"{_root(live)}/auth/token"
        assert config["grant_types_supported"] == ["client_credentials"]
        assert config["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
        assert set(config["token_endpoint_auth_signing_alg_values_supported"]) == \
            {"RS384", "ES384"}
        assert "client-confidential-asymmetric" in config["capabilities"]
        assert "authorization_endpoint" not in config
    security = httpx.get(f"{live.base}/metadata").json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    [uris] = security["extension"]
    assert uris["extension"] == [{"url": "token", "valueUri": f"{_root(live)}/auth/token"}]


def _assertion(key_path: Path, alg: str, kid: str, **claims: Any) -> str:
    key = keys.load_private_key(str(key_path))
    now = int(time.time())
    body = {"iss": "registry-a", "sub": "registry-a", "exp": now + 240, "iat": now,
            "jti": str(uuid.uuid4()), **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=alg,
                      headers={"kid": kid, "typ": "JWT"})


def _ask(live: Live, assertion: str, scope: str = "system/*.rs",
         **form: str) -> httpx.Response:
    data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION,
            "client_assertion": assertion, "scope": scope, **form}
    return httpx.post(f"{_root(live)}/auth/token", data=data)


def test_refusals(live: Live, tmp_path: Path) -> None:
    path, jwk = _key(tmp_path, "RS384")
    _register(live, tmp_path, "registry-a", jwk, "system/*.rs")
    aud = f"{_root(live)}/auth/token"
    kid = jwk["kid"]

    good = _assertion(path, "RS384", kid, aud=aud)
    first = _ask(live, good)
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    token = first.json()["access_token"]

    cases = {
        "replayed jti": (good, "system/*.rs", "invalid_client", "jti was already used"),
        "wrong aud": (_assertion(path, "RS384", kid, aud="https://elsewhere.example/token"),
                      "system/*.rs", "invalid_client", "aud must be the token endpoint"),
        "expired": (_assertion(path, "RS384", kid, aud=aud, exp=int(time.time()) - 120),
                    "system/*.rs", "invalid_client", "expired"),
        "exp too far": (_assertion(path, "RS384", kid, aud=aud, exp=int(time.time()) + 900),
                        "system/*.rs", "invalid_client", "more than five minutes"),
        "unknown kid": (_assertion(path, "RS384", "not-a-kid", aud=aud), "system/*.rs",
                        "invalid_client", "no RSA key with kid 'not-a-kid'"),
        "iss not sub": (_assertion(path, "RS384", kid, aud=aud, sub="someone-else"),
                        "system/*.rs", "invalid_client", "iss and sub"),
        "unknown client": (_assertion(path, "RS384", kid, aud=aud, iss="nobody", sub="nobody"),
                           "system/*.rs", "invalid_client", "no client 'nobody'"),
        "RS256": (_assertion(path, "RS256", kid, aud=aud), "system/*.rs", "invalid_client",
                  "RS384 and ES384"),
        "scope not registered": (_assertion(path, "RS384", kid, aud=aud), "system/*.cu",
                                 "invalid_scope", "none of the requested scopes"),
    }
    for name, (assertion, scope, error, text) in cases.items():
        answer = _ask(live, assertion, scope)
        body = answer.json()
        assert (answer.status_code, body["error"]) == \
            (401 if error == "invalid_client" else 400, error), (name, body)
        assert text in body["error_description"], (name, body)
        assert "access_token" not in body

    other_dir = tmp_path / "other"
    other_dir.mkdir()
    signed_elsewhere, _ = _key(other_dir, "RS384")  # a key the client never registered
    forged = _ask(live, _assertion(signed_elsewhere, "RS384", kid, aud=aud)).json()
    assert forged["error"] == "invalid_client" and "Signature" in forged["error_description"]
    assert _ask(live, good, grant_type="password").json()["error"] == "unsupported_grant_type"
    assert _ask(live, good, client_assertion_type="secret").json()["error"] == "invalid_request"

    # the one token issued works; revoking the client ends it at once
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{live.base}/ResearchStudy", headers=headers).status_code == 200
    assert _cli(live, "client", "revoke", "registry-a").returncode == 0
    refused = httpx.get(f"{live.base}/ResearchStudy", headers=headers)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["issue"][0]["diagnostics"]
    fresh = _ask(live, _assertion(path, "RS384", kid, aud=aud))
    assert fresh.json()["error"] == "invalid_client"


@pytest.fixture
def sekmet_keys(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """sekmet-fhir's own server, publishing the public key of its signing key at
    /.well-known/jwks.json; yields that URL and the private key's path."""
    key_path, _ = _key(tmp_path, "ES384")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    root = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = sekmet_config.Settings(base_url=f"{root}/fhir", data_dir=str(tmp_path / "sk"),
                                      log_inbound=False, own_private_key_path=str(key_path))
    server = uvicorn.Server(uvicorn.Config(sekmet_main.create_app(settings), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "sekmet-fhir did not start"
        time.sleep(0.05)
    yield f"{root}/.well-known/jwks.json", key_path
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()


def test_a_client_registered_by_jwks_url(live: Live, sekmet_keys: tuple[str, Path]) -> None:
    url, key_path = sekmet_keys
    done = _cli(live, "client", "add", "--name", "registry-b", "--jwks-url", url,
                "--scope", "system/*.rs")
    assert done.returncode == 0, done.stderr
    listed = _cli(live, "client", "list").stdout.splitlines()
    assert listed[0].split() == ["CLIENT", "SCOPES", "KEYS", "CREATED", "STATE"]
    row = listed[1].split()
    assert row[:3] == ["registry-b", "system/*.rs", url] and row[4] == "active"
    client = _sekmet_client(live, "registry-b", key_path, "ES384", "system/*.rs")
    try:
        answer = client.request("GET", "Observation", params={"_count": "1"})
        assert answer.status == 200, answer.text
    finally:
        client.close()
    registry = ClientRegistry(live.pipeline.store)
    assert [c.client_id for c in registry.all()] == ["registry-b"]


def test_client_command_mistakes(live: Live, tmp_path: Path) -> None:
    _, jwk = _key(tmp_path, "RS384")
    private = dict(jwk, d="secret-part")
    (tmp_path / "private.json").write_text(json.dumps({"keys": [private]}))
    (tmp_path / "nokid.json").write_text(json.dumps({"keys": [{"kty": "RSA", "n": "x",
                                                                "e": "AQAB"}]}))
    for args, text in [
        (("--jwks-url", "http://example.org/jwks.json"), "must be an https URL"),
        (("--jwks-file", str(tmp_path / "private.json")), "private key"),
        (("--jwks-file", str(tmp_path / "nokid.json")), "with a 'kid'"),
        (("--jwks-file", str(tmp_path / "missing.json")), "not a readable JSON file"),
        ((), "exactly one of --jwks-url and --jwks-file"),
    ]:
        done = _cli(live, "client", "add", "--name", "c", "--scope", "system/*.rs", *args)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done
        assert text in done.stderr
    assert _cli(live, "client", "revoke", "nobody").returncode == 2
    assert ClientRegistry(live.pipeline.store).all() == []
