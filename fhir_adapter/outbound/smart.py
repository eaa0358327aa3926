"""SMART Backend Services client: signed client assertions, access tokens, one retry on 401.

SMART App Launch 2.2, "Client Authentication: Asymmetric (public key)"
(client-confidential-asymmetric.html):

- "Registering a client": the client SHALL support both ``RS384`` and ``ES384``; each JWK of its
  set carries ``kty`` and ``kid`` (here the RFC 7638 thumbprint of the public key).
- "Protocol details": the authentication JWT has the header ``alg``, ``kid``, ``typ: JWT`` and
  the claims ``iss`` = ``sub`` = client_id, ``aud`` = the token URL it is posted to, ``exp`` no
  more than five minutes in the future, and a one-time ``jti``; it is posted as
  ``client_assertion`` with ``client_assertion_type``
  ``urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and ``grant_type=client_credentials``
  (backend-services.html, "Obtaining an access token").
- The token endpoint comes from ``[base]/.well-known/smart-configuration`` (conformance.html),
  unless the settings name one.

The access token is kept until shortly before its ``expires_in``; a 401 from the FHIR server
drops it, and the request is sent once more with a new one. Tokens and keys are never logged,
printed or shown in a repr.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from fhir_adapter.errors import ConfigError, DeliveryError, UnusableInput
from fhir_adapter.settings import Settings

__all__ = [
    "ALGORITHMS",
    "ASSERTION_TYPE",
    "AuthFailed",
    "SigningKey",
    "SmartAuth",
    "create_key",
    "public_jwks",
    "push_auth",
    "smart_auth",
]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS384", "ES384")
#: Lifetime of a client assertion: the spec's ceiling is five minutes; a little less leaves
#: room for clocks that differ.
ASSERTION_SECONDS = 240
#: A token is renewed this long before it expires (or at half its life, if that is shorter).
RENEW_MARGIN = 60.0

Clock = Callable[[], float]


class AuthFailed(DeliveryError):
    """The authorization server refused the client (``invalid_client``, ``invalid_scope``...)
    or could not be asked. Exit 1: the settings or the registration must change."""

    exit_code = 1


@dataclass(frozen=True)
class SigningKey:
    """A private key read from its PEM file, with the algorithm and kid it signs with."""

    private: Any = field(repr=False)
    algorithm: str
    kid: str

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        try:
            data = Path(path).read_bytes()
            key = serialization.load_pem_private_key(data, password=None)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the private key ({exc.strerror})") from None
        except (ValueError, TypeError):
            raise ConfigError(f"{path}: not an unencrypted PEM private key") from None
        if isinstance(key, rsa.RSAPrivateKey):
            algorithm = "RS384"
        elif isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
            algorithm = "ES384"
        else:
            raise ConfigError(f"{path}: the key is neither RSA nor EC P-384 (RS384, ES384)")
        return cls(key, algorithm, _thumbprint(_public_jwk(key.public_key())))

    def jwk(self) -> dict[str, Any]:
        """The public half, as a JWK of the client's JWK Set."""
        jwk = _public_jwk(self.private.public_key())
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig",
                "key_ops": ["verify"]}

    def assertion(self, client_id: str, token_url: str, now: float) -> str:
        claims = {"iss": client_id, "sub": client_id, "aud": token_url,
                  "iat": int(now), "exp": int(now) + ASSERTION_SECONDS, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self.private, algorithm=self.algorithm,
                          headers={"kid": self.kid, "typ": "JWT"})


def create_key(path: Path, algorithm: str = "RS384") -> dict[str, Any]:
    """A new key pair: the private key written to ``path`` (mode 0600, never overwritten),
    the public JWK Set returned."""
    if algorithm not in ALGORITHMS:
        raise UnusableInput(f"--alg {algorithm!r}: one of {', '.join(ALGORITHMS)}")
    key: Any = (rsa.generate_private_key(public_exponent=65537, key_size=3072)
                if algorithm == "RS384" else ec.generate_private_key(ec.SECP384R1()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UnusableInput(f"{path} exists: a key is never overwritten") from None
    with os.fdopen(descriptor, "wb") as fh:
        fh.write(pem)
    return public_jwks([path])


def public_jwks(paths: list[Path]) -> dict[str, Any]:
    """The JWK Set of the public halves of these private key files."""
    return {"keys": [SigningKey.load(p).jwk() for p in paths]}


class SmartAuth(requests.auth.AuthBase):
    """``requests`` authentication by SMART Backend Services, for one FHIR server."""

    def __init__(self, base_url: str, client_id: str, key_file: Path, *,
                 token_url: str | None = None, scope: str = "system/*.rs",
                 session: requests.Session | None = None, clock: Clock = time.time,
                 timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.key = SigningKey.load(key_file)
        self.scope = scope
        self._token_url = token_url
        self._session = session or requests.Session()
        self._clock = clock
        self._timeout = timeout
        self._token: str | None = None
        self._renew_at = 0.0
        self.tokens_fetched = 0

    def __repr__(self) -> str:
        return f"SmartAuth({self.base_url!r}, client_id={self.client_id!r})"

    @property
    def token_url(self) -> str:
        if self._token_url is None:
            self._token_url = self._discover()
        return self._token_url

    def _discover(self) -> str:
        url = f"{self.base_url}/.well-known/smart-configuration"
        try:
            answer = self._session.get(url, headers={"Accept": "application/json"},
                                       timeout=self._timeout)
        except requests.RequestException as exc:
            raise AuthFailed(f"{url}: {type(exc).__name__}") from None
        endpoint = _json(answer).get("token_endpoint") if answer.ok else None
        if not isinstance(endpoint, str) or not endpoint:
            raise AuthFailed(f"{url}: HTTP {answer.status_code}, no token_endpoint; set the "
                             "token endpoint in the settings")
        return endpoint

    def access_token(self) -> str:
        """The cached token, or a new one when it is about to expire."""
        if self._token is None or self._clock() >= self._renew_at:
            self._fetch()
        assert self._token is not None
        return self._token

    def invalidate(self) -> None:
        self._token = None

    def _fetch(self) -> None:
        url = self.token_url
        now = self._clock()
        form = {"grant_type": "client_credentials", "scope": self.scope,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.key.assertion(self.client_id, url, now)}
        try:
            answer = self._session.post(url, data=form, timeout=self._timeout,
                                        headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise AuthFailed(f"{url}: {type(exc).__name__}") from None
        body = _json(answer)
        token = body.get("access_token")
        if not answer.ok or not isinstance(token, str):
            error = body.get("error") or f"HTTP {answer.status_code}"
            detail = body.get("error_description")
            raise AuthFailed(f"{url} refused client {self.client_id!r}: {error}"
                             + (f" ({detail})" if isinstance(detail, str) else ""))
        lifetime = float(body.get("expires_in") or 300)
        self._token = token
        self._renew_at = now + max(lifetime - RENEW_MARGIN, lifetime / 2)
        self.tokens_fetched += 1

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.access_token()}"
        return request


def smart_auth(settings: Settings, base_url: str) -> SmartAuth | None:
    """SMART Backend Services for the EHR when a client id is configured, else no auth."""
    return _configured(settings, base_url, settings.ehr_client_id, settings.ehr_token_url,
                       settings.ehr_scope)


def push_auth(settings: Settings, base_url: str) -> SmartAuth | None:
    """SMART Backend Services for the research server ``push`` delivers to, when it
    registered a client for the adapter (``FHIR_ADAPTER_PUSH_CLIENT_ID``), else None (a
    static token, if any). The same key pair as for the EHR: one site, one public key set."""
    return _configured(settings, base_url, settings.push_client_id, settings.push_token_url,
                       settings.push_scope)


def _configured(settings: Settings, base_url: str, client_id: str | None,
                token_url: str | None, scope: str) -> SmartAuth | None:
    if not client_id:
        return None
    if not settings.ehr_key_file.is_file():
        raise ConfigError(f"FHIR_ADAPTER_EHR_KEY_FILE {settings.ehr_key_file} does not exist: "
                          "make one with fhir-adapter keys create")
    return SmartAuth(base_url, client_id, settings.ehr_key_file, token_url=token_url,
                     scope=scope)


def send(session: requests.Session, auth: requests.auth.AuthBase | None, method: str,
         url: str, **options: Any) -> requests.Response:
    """One request; with SMART auth, a 401 drops the token and the request goes once more."""
    answer = session.request(method, url, auth=auth, **options)
    if answer.status_code == 401 and isinstance(auth, SmartAuth):
        answer.close()
        auth.invalidate()
        answer = session.request(method, url, auth=auth, **options)
    return answer


def _json(answer: requests.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _public_jwk(public: Any) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(public, rsa.RSAPublicKey) else ECAlgorithm
    jwk: dict[str, Any] = json.loads(algorithm.to_jwk(public))
    return jwk


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 of the required members, sorted, no white space."""
    names = ("e", "kty", "n") if jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({n: jwk[n] for n in names}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(
        b"=").decode()
