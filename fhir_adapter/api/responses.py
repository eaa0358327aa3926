"""FHIR JSON responses, the Prefer header, and Location / ETag headers of a write."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = [
    "FHIR_JSON",
    "FhirResponse",
    "absolute",
    "base_url",
    "http_date",
    "prefer_return",
    "write_response",
]

FHIR_JSON = "application/fhir+json"
_RETURNS = {"minimal": "minimal", "representation": "representation",
            "operationoutcome": "OperationOutcome"}


def _default(value: Any) -> Any:
    """Decimals keep their exact text (``1.50`` stays ``1.50``), as FHIR decimals must."""
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(str(value).encode("ascii"))
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


class FhirResponse(JSONResponse):
    """``application/fhir+json``; compact JSON written with orjson."""

    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_default)


def prefer_return(request: Request) -> str:
    """Prefer ``return=``: minimal, representation (the default) or OperationOutcome."""
    for part in request.headers.get("prefer", "").split(","):
        for token in part.split(";"):
            key, _, value = token.strip().partition("=")
            if key.strip().lower() == "return":
                chosen = _RETURNS.get(value.strip().strip('"').lower())
                if chosen:
                    return chosen
    return "representation"


def base_url(request: Request) -> str:
    """The FHIR base of this server as the client reached it, e.g. ``http://host:8080/fhir``."""
    return str(request.base_url).rstrip("/") + "/fhir"


def absolute(request: Request, location: str) -> str:
    if location.startswith(("http://", "https://")):
        return location
    return f"{base_url(request)}/{location.lstrip('/')}"


def write_response(
    request: Request,
    *,
    status: int,
    prefer: str,
    resource: dict[str, Any] | None,
    outcome: dict[str, Any] | None,
    location: str | None,
    etag: str | None,
    last_modified: datetime | str | None,
) -> Response:
    """The answer to a create or update, shaped by Prefer, with Location, ETag, Last-Modified."""
    headers: dict[str, str] = {}
    if location:
        headers["Location"] = absolute(request, location)
        headers["Content-Location"] = headers["Location"]
    if etag:
        headers["ETag"] = etag
    if last_modified:
        headers["Last-Modified"] = http_date(last_modified)
    if prefer == "minimal":
        return Response(status_code=status, headers=headers)
    if prefer == "OperationOutcome" or resource is None:
        body = outcome or _ok_outcome(status)
        return FhirResponse(body, status_code=status, headers=headers)
    return FhirResponse(resource, status_code=status, headers=headers)


def http_date(value: datetime | str) -> str:
    """An HTTP date (RFC 9110) from a datetime or a FHIR instant."""
    moment: datetime
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    else:
        moment = value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _ok_outcome(status: int) -> dict[str, Any]:
    text = "created" if status == 201 else "stored"
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": text}],
    }
