"""``keys create``/``keys show`` and ``serve``'s ``/.well-known/jwks.json``."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import jwt
import pytest

from fhir_adapter.cli import main
from fhir_adapter.outbound.smart import SigningKey
from tests.api.api_harness import make_settings, make_tokens, start


@pytest.mark.parametrize("algorithm", ["RS384", "ES384"])
def test_keys_create_writes_a_private_file_and_prints_the_public_set(
        tmp_path: Path, algorithm: str, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "site.pem"
    with pytest.raises(SystemExit) as done:
        main(["keys", "create", "--alg", algorithm, "--out", str(key_file)])
    assert done.value.code == 0
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    printed = capsys.readouterr()
    jwks = json.loads(printed.out)
    [jwk] = jwks["keys"]
    assert jwk["alg"] == algorithm and jwk["kty"] == ("RSA" if algorithm == "RS384" else "EC")
    assert "d" not in jwk and "PRIVATE" not in printed.out + printed.err  # public half only
    # what the key signs verifies with the printed public key
    key = SigningKey.load(key_file)
    token = key.assertion("site", "https://ehr.example/auth/token", 1_000_000_000)
    algo = jwt.algorithms.RSAAlgorithm if jwk["kty"] == "RSA" else jwt.algorithms.ECAlgorithm
    claims = jwt.decode(token, algo.from_jwk(json.dumps(jwk)), algorithms=[algorithm],
                        audience="https://ehr.example/auth/token",
                        options={"verify_exp": False})
    assert claims["exp"] - claims["iat"] <= 300 and jwt.get_unverified_header(token)["kid"] == \
        jwk["kid"]
    with pytest.raises(SystemExit) as again:
        main(["keys", "create", "--out", str(key_file)])
    assert again.value.code == 2  # never overwritten
    assert capsys.readouterr().err.strip().endswith("exists: a key is never overwritten")


def test_serve_publishes_the_public_keys_without_a_token(tmp_path: Path) -> None:
    key_file = tmp_path / "site.pem"
    with pytest.raises(SystemExit):
        main(["keys", "create", "--alg", "ES384", "--out", str(key_file)])
    settings = make_settings(tmp_path).model_copy(update={"ehr_key_file": key_file})
    running = start(settings, make_tokens(settings.tokens_file))
    live = next(running)
    try:
        answer = httpx.get(live.base.rsplit("/fhir", 1)[0] + "/.well-known/jwks.json")
    finally:
        running.close()
    assert answer.status_code == 200
    assert answer.json() == {"keys": [SigningKey.load(key_file).jwk()]}
