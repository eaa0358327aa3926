"""SMART Backend Services authorisation server: discovery and the token endpoint.

SMART App Launch 2.2: ``/.well-known/smart-configuration`` (conformance.html, "Metadata")
relative to the FHIR base; the token endpoint takes ``grant_type=client_credentials`` with a
``client_assertion`` (backend-services.html, "Obtaining an access token"), answers
``access_token``, ``token_type`` bearer, ``expires_in`` (at most 300 s: "SHOULD NOT exceed five
minutes") and ``scope``; errors as RFC 6749 section 5.2, never cached (section 5.1).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fhir_adapter.api.assertion import (
    ALGORITHMS,
    ASSERTION_TYPE,
    OAuthError,
    grant_scopes,
    verify_assertion,
)
from fhir_adapter.api.deps import in_thread
from fhir_adapter.errors import AdapterError, AuthError
from fhir_adapter.outbound.jwks import JwksFetcher
from fhir_adapter.store.clients import ClientRegistry, ClientRow
from fhir_adapter.store.tokens import Principal

__all__ = ["ACCESS_TOKEN_SECONDS", "TOKEN_PATH", "LazySmartServer", "SmartServer", "router",
           "token_url"]

router = APIRouter(tags=["authorisation"])

TOKEN_PATH = "/auth/token"
ACCESS_TOKEN_SECONDS = 300
_PREFIX = "sat_"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_FORM_BYTES = 64 * 1024


class SmartServer:
    """The clients of the store, their keys, and the access tokens issued to them."""

    def __init__(self, registry: ClientRegistry, *, fetcher: JwksFetcher | None = None) -> None:
        self.registry = registry
        self.fetcher = fetcher or JwksFetcher()

    def keys_of(self, client: ClientRow, refresh: bool) -> Sequence[dict[str, Any]]:
        if client.jwks is not None:
            keys = client.jwks.get("keys", [])
            return [k for k in keys if isinstance(k, dict)] if isinstance(keys, list) else []
        if client.jwks_url:
            try:
                return self.fetcher.keys(client.jwks_url, refresh=refresh)
            except AdapterError as exc:
                raise OAuthError("invalid_client", exc.message, 401) from exc
        return []

    def issue(self, form: dict[str, str], token_endpoint: str) -> dict[str, Any]:
        """The token response to a token request, or ``OAuthError``."""
        if form.get("grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type",
                             "this server grants client_credentials only (SMART Backend Services)")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
        assertion = form.get("client_assertion")
        if not assertion:
            raise OAuthError("invalid_request", "the client_assertion is missing")
        now = datetime.now(UTC)
        verified = verify_assertion(assertion, token_url=token_endpoint,
                                    client_of=self.registry.get, keys_of=self.keys_of, now=now)
        granted = grant_scopes(form.get("scope"), verified.client.scopes)
        scope_text = " ".join(s.spelling() for s in granted)
        secret = _PREFIX + secrets.token_urlsafe(32)
        expires_at = now + timedelta(seconds=ACCESS_TOKEN_SECONDS)
        if not self.registry.issue(verified.client.client_id, verified.jti, verified.expires,
                                   secret=secret, scopes=scope_text, now=now,
                                   expires_at=expires_at):
            raise OAuthError("invalid_client", "this client_assertion's jti was already used", 401)
        return {"access_token": secret, "token_type": "bearer",
                "expires_in": ACCESS_TOKEN_SECONDS, "scope": scope_text}

    def principal(self, secret: str) -> Principal | None:
        """The caller behind an access token, checked at every request: unknown (None),
        expired, or its client revoked (``AuthError``); its scopes are those granted, narrowed
        to what the client is registered for now."""
        if not secret.startswith(_PREFIX):
            return None
        grant = self.registry.grant_of(secret)
        if grant is None:
            return None
        if grant.client.revoked_at is not None:
            raise AuthError(f"the client {grant.client.client_id!r} was revoked")
        if grant.expires_at <= datetime.now(UTC):
            raise AuthError("the access token has expired; request a new one at the token "
                            "endpoint")
        scopes = grant_scopes(grant.scopes, grant.client.scopes) if grant.scopes else []
        return Principal(grant.client.client_id, tuple(scopes), grant.expires_at)


class LazySmartServer:
    """A ``SmartServer`` made at its first use (the app factory must not touch the store:
    a request refused before any work reaches none of it)."""

    def __init__(self, registry: Callable[[], ClientRegistry]) -> None:
        self._registry = registry
        self._server: SmartServer | None = None

    def server(self) -> SmartServer:
        if self._server is None:
            self._server = SmartServer(self._registry())
        return self._server

    @property
    def registry(self) -> ClientRegistry:
        return self.server().registry

    def issue(self, form: dict[str, str], token_endpoint: str) -> dict[str, Any]:
        return self.server().issue(form, token_endpoint)

    def principal(self, secret: str) -> Principal | None:
        if not secret.startswith(_PREFIX):
            return None
        return self.server().principal(secret)


def token_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + TOKEN_PATH


def _oauth_error(error: OAuthError) -> Response:
    headers = dict(_NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="fhir-adapter"'
    return JSONResponse({"error": error.error, "error_description": error.description},
                        status_code=error.status, headers=headers)


async def _form(request: Request) -> dict[str, str]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request",
                         "the token request must be application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        raise OAuthError("invalid_request", "the token request is too large")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise OAuthError("invalid_request", "the token request is not UTF-8") from exc
    repeated = [k for k, v in parsed.items() if len(v) > 1]
    if repeated:  # RFC 6749 section 3.2: parameters MUST NOT be included more than once
        raise OAuthError("invalid_request", f"parameter {repeated[0]!r} is given more than once")
    return {k: v[0] for k, v in parsed.items()}


@router.post(TOKEN_PATH, summary="SMART Backend Services token endpoint")
async def token(request: Request) -> Response:
    server: LazySmartServer | None = getattr(request.app.state, "smart", None)
    try:
        if server is None:
            raise OAuthError("invalid_client", "no client is registered with this server", 401)
        form = await _form(request)
        answer = await in_thread(server.issue, form, token_url(request))
    except OAuthError as error:
        return _oauth_error(error)
    return JSONResponse(answer, headers=_NO_STORE)


def smart_configuration(request: Request) -> dict[str, Any]:
    """What this authorisation server does, and nothing more: backend services only, so no
    authorization_endpoint (conformance.html: required only for the launch capabilities)."""
    return {
        "token_endpoint": token_url(request),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "scopes_supported": ["system/*.rs", "system/*.cu", "system/*.read", "system/*.write"],
        "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
    }


@router.get("/fhir/.well-known/smart-configuration", summary="SMART configuration")
@router.get("/.well-known/smart-configuration", include_in_schema=False)
async def well_known(request: Request) -> Response:
    return JSONResponse(smart_configuration(request))

