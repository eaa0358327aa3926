"""What is settled before a request reaches its route: HEAD, the format, the docs' token.

An ASGI middleware, so that these answers come before authentication and scopes (INTERFACES.md,
"Unsupported interactions ... are refused as such, before scopes are weighed"):

- ``HEAD`` is answered as the ``GET`` of the same URL without its body (FHIR http.html: servers
  should support HEAD wherever they support GET).
- FHIR XML is refused: ``_format`` (which overrides ``Accept``, FHIR http.html "Content Types")
  or an ``Accept`` naming no JSON is 406; a request body in a type other than JSON is 415.
- ``/docs`` and ``/openapi.json`` need a known bearer token as soon as tokens are configured.
- A URL that holds a NUL character is refused (400).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from fhir_adapter.api.body import check_content_type
from fhir_adapter.api.errors import outcome_response
from fhir_adapter.api.responses import FhirResponse
from fhir_adapter.api.security import authenticate
from fhir_adapter.errors import AdapterError, Issue
from fhir_adapter.fhir import error_outcome

__all__ = ["JSON_MEDIA", "Negotiation", "accepts_json"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Media types (and ranges) this server answers in: FHIR JSON, and NDJSON (Bulk Data files).
JSON_MEDIA = frozenset({"application/fhir+json", "application/json", "application/json+fhir",
                        "application/fhir+ndjson", "application/ndjson",
                        "application/x-ndjson", "application/*", "*/*"})
#: ``_format`` values meaning JSON (FHIR http.html: json, or a JSON mime type).
_JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json",
                           "application/json+fhir"})
_DOCS = frozenset({"/docs", "/docs/oauth2-redirect", "/openapi.json"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def accepts_json(accept: str | None) -> bool:
    """Whether an ``Accept`` header admits FHIR JSON (a range with ``q=0`` admits nothing)."""
    if accept is None or not accept.strip():
        return True
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0 and media.lower() in JSON_MEDIA:
            return True
    return False


class Negotiation:
    """The middleware; ``app`` is the FastAPI app it wraps."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refusal(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if scope["method"] == "HEAD":
            await self.app({**scope, "method": "GET"}, receive, _without_body(send))
            return
        await self.app(scope, receive, send)

    def _refusal(self, request: Request) -> Any:
        path = request.url.path
        try:
            if path in _DOCS and request.app.state.tokens.configured():
                authenticate(request)
            if not path.startswith("/fhir"):
                return None
            if "\x00" in path or "%00" in request.url.query:
                # no FHIR id, search value or parameter holds a NUL (and PostgreSQL takes none)
                return outcome_response(400, [Issue(
                    "error", "value", None, "the URL holds the character U+0000 (NUL)")])
            wanted = dict(parse_qsl(request.url.query)).get("_format")
            if wanted is not None and wanted.strip().lower() not in _JSON_FORMATS:
                return _not_acceptable(f"_format={wanted!r}: this server answers FHIR JSON "
                                       "only (_format=json)", "_format")
            if wanted is None and not accepts_json(request.headers.get("accept")):
                return _not_acceptable(
                    f"Accept {request.headers.get('accept')!r}: this server answers FHIR JSON "
                    "only (application/fhir+json); FHIR XML is not supported", "Accept")
            if request.method in _BODY_METHODS:
                check_content_type(request)
        except AdapterError as exc:
            headers = {"WWW-Authenticate": 'Bearer realm="fhir-adapter"'} \
                if exc.http_status == 401 else None
            return FhirResponse(error_outcome(exc), status_code=exc.http_status, headers=headers)
        return None


def _not_acceptable(text: str, where: str) -> Any:
    return outcome_response(406, [Issue("error", "not-supported", where, text)])


def _without_body(send: Send) -> Send:
    """``send`` for a HEAD: the GET's status and headers (Content-Length included), no body."""

    async def send_head(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return send_head
