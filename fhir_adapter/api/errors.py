"""The one place where errors become an OperationOutcome and an HTTP status."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from fhir_adapter.api.body import ClientGone
from fhir_adapter.api.responses import FhirResponse
from fhir_adapter.errors import AdapterError, AuthError, ConfigError, Forbidden, Issue
from fhir_adapter.fhir import error_outcome, operation_outcome

__all__ = ["install_error_handlers", "outcome_response"]

log = logging.getLogger("fhir_adapter.api")

_STATUS_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    412: "multiple-matches",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
}


def outcome_response(
    status: int, issues: Iterable[Issue], headers: Mapping[str, str] | None = None
) -> Response:
    return FhirResponse(operation_outcome(issues), status_code=status, headers=headers)


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client's fault, and nobody is left to read an answer: one line, no traceback."""
    log.info("client disconnected before its request body was read: %s %s",
             request.method, request.url.path)
    return outcome_response(400, [Issue("error", "incomplete", None, "incomplete request body")])


async def _adapter_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AdapterError)
    if isinstance(exc, ClientGone):
        return await _client_gone(request, exc)
    if isinstance(exc, ConfigError):
        log.error("server configuration problem: %s", exc.line())
        issue = Issue("fatal", "exception", None, "the server is misconfigured; see its log")
        return outcome_response(500, [issue])
    headers = None
    if isinstance(exc, AuthError) and not isinstance(exc, Forbidden):
        headers = {"WWW-Authenticate": 'Bearer realm="fhir-adapter"'}
    return FhirResponse(error_outcome(exc), status_code=exc.http_status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "processing")
    text = str(exc.detail) if exc.detail else "request refused"
    if exc.status_code == 404:
        text = f"no such FHIR interaction or resource: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        text = f"{request.method} is not supported on {request.url.path}"
    return outcome_response(exc.status_code, [Issue("error", code, None, text)], exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    issues = []
    for problem in exc.errors():
        where = ".".join(str(part) for part in problem.get("loc", ())[1:])
        issues.append(Issue("error", "invalid", where or None, str(problem.get("msg"))))
    return outcome_response(400, issues or [Issue("error", "invalid", None, "bad request")])


async def _bug(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    issue = Issue("fatal", "exception", None, "internal error; it has been logged")
    return outcome_response(500, [issue])


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AdapterError, _adapter_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _bug)
