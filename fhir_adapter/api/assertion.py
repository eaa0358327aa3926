"""The checks of a SMART Backend Services client assertion (a ``private_key_jwt``), with PyJWT.

SMART App Launch 2.2, "SMART Backend Services" (backend-services.html), "Authenticating to the
token endpoint" and "Signature verification": the assertion is a JWT signed with RS384 or
ES384 whose header names the key (``kid``); ``iss`` and ``sub`` are the client id, ``aud`` is
the token endpoint URL, ``exp`` no more than five minutes in the future, ``jti`` not seen
before within the assertion's lifetime. Errors are those of RFC 6749 section 5.2.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from fhir_adapter.store.clients import ClientRow
from fhir_adapter.store.tokens import Scope, parse_scope

__all__ = [
    "ALGORITHMS",
    "ASSERTION_TYPE",
    "MAX_ASSERTION_SECONDS",
    "OAuthError",
    "VerifiedAssertion",
    "grant_scopes",
    "verify_assertion",
]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS384", "ES384")
MAX_ASSERTION_SECONDS = 300
_KEY_TYPES = {"RS384": "RSA", "ES384": "EC"}
#: Clock difference between client and server tolerated on ``exp`` and ``iat``.
_LEEWAY_SECONDS = 10


class OAuthError(Exception):
    """An RFC 6749 section 5.2 error: its code, a description, the HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    client: ClientRow
    jti: str
    expires: datetime


def _invalid_client(text: str) -> OAuthError:
    return OAuthError("invalid_client", text, 401)


def _public_key(jwk: dict[str, Any], alg: str) -> Any:
    text = json.dumps(jwk)
    return RSAAlgorithm.from_jwk(text) if alg == "RS384" else ECAlgorithm.from_jwk(text)


def verify_assertion(
    assertion: str,
    *,
    token_url: str,
    client_of: Callable[[str], ClientRow | None],
    keys_of: Callable[[ClientRow, bool], Sequence[dict[str, Any]]],
    now: datetime,
) -> VerifiedAssertion:
    """The client of a valid assertion; ``OAuthError`` (``invalid_client``) naming the failed
    check otherwise. ``keys_of(client, refresh)`` gives its JWKS keys."""
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise _invalid_client(f"the client_assertion is not a JWT: {exc}") from exc
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALGORITHMS:
        raise _invalid_client(f"the client_assertion is signed with {alg!r}; this server "
                              f"accepts {' and '.join(ALGORITHMS)}")
    if not isinstance(kid, str) or not kid:
        raise _invalid_client("the client_assertion header has no 'kid'")
    client_id = unverified.get("iss")
    client = client_of(client_id) if isinstance(client_id, str) else None
    if client is None:
        raise _invalid_client(f"no client {client_id!r} is registered")
    if client.revoked_at is not None:
        raise _invalid_client(f"the client {client_id!r} was revoked")
    key = _matching_key(client, kid, alg, keys_of)
    try:
        claims = jwt.decode(
            assertion, _public_key(key, alg), algorithms=[alg], audience=token_url,
            leeway=_LEEWAY_SECONDS,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
        )
    except jwt.InvalidAudienceError as exc:
        raise _invalid_client(f"the client_assertion's aud must be the token endpoint "
                              f"{token_url}") from exc
    except jwt.ExpiredSignatureError as exc:
        raise _invalid_client("the client_assertion has expired") from exc
    except jwt.PyJWTError as exc:
        raise _invalid_client(f"the client_assertion is not valid: {exc}") from exc
    if claims["iss"] != claims["sub"]:
        raise _invalid_client("the client_assertion's iss and sub must both be the client id")
    expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
    if (expires - now).total_seconds() > MAX_ASSERTION_SECONDS + _LEEWAY_SECONDS:
        raise _invalid_client("the client_assertion's exp is more than five minutes ahead")
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > 255:
        raise _invalid_client("the client_assertion's jti must be a string of 1-255 characters")
    return VerifiedAssertion(client, jti, expires)


def _matching_key(client: ClientRow, kid: str, alg: str,
                  keys_of: Callable[[ClientRow, bool], Sequence[dict[str, Any]]]
                  ) -> dict[str, Any]:
    """The client's key with this ``kid`` and the algorithm's key type; a key set fetched from
    a URL is fetched again once before a ``kid`` is declared unknown (keys rotate)."""
    refreshes = (False, True) if client.jwks_url else (False,)
    for refresh in refreshes:
        for key in keys_of(client, refresh):
            if key.get("kid") == kid and key.get("kty") == _KEY_TYPES[alg]:
                return key
    raise _invalid_client(f"the client {client.client_id!r} has no {_KEY_TYPES[alg]} key "
                          f"with kid {kid!r}")


def grant_scopes(requested: str | None, registered: str) -> list[Scope]:
    """The scopes to grant: each requested one narrowed to what the registered scopes allow
    (``system/*.read`` asked, ``system/*.rs`` registered: ``system/*.rs``); the registered
    ones when none is asked for. ``invalid_scope`` when nothing is left, or a scope is not
    one of the system scopes this server knows."""
    allowed = [parse_scope(s) for s in registered.split()]
    if not requested or not requested.strip():
        return allowed
    granted: dict[str, Scope] = {}
    for text in requested.split():
        try:
            asked = parse_scope(text)
        except Exception as exc:
            raise OAuthError("invalid_scope", f"scope {text!r} is not a system scope this "
                             "server grants (e.g. system/*.rs)") from exc
        for have in allowed:
            narrowed = _narrow(asked, have)
            if narrowed is not None:
                granted.setdefault(narrowed.spelling(), narrowed)
    if not granted:
        raise OAuthError("invalid_scope", f"none of the requested scopes ({requested.strip()}) "
                         f"is registered for this client (registered: {registered})")
    return list(granted.values())


def _narrow(asked: Scope, have: Scope) -> Scope | None:
    if have.resource_type not in ("*", asked.resource_type) and asked.resource_type != "*":
        return None
    actions = asked.actions & have.actions
    if not actions:
        return None
    resource_type = asked.resource_type if have.resource_type == "*" else have.resource_type
    return Scope(resource_type, frozenset(actions))
