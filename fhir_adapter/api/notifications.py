"""``POST /notifications/{id}``: rest-hook notifications of the Subscriptions the adapter holds
on the EHR (``fhir-adapter subscribe``); ``PUT /notifications/{id}/{type}/{rid}`` takes the
update a classic R4 rest-hook with payload sends (R4 subscription.html, 2.46.7.1 "REST Hook").

A notification must carry its subscription's secret in ``Authorization: Bearer`` (the
Subscription's ``channel.header`` says so to the EHR; Backport IG, "Channels", REST-Hook: each
``channel.header`` value SHALL be sent as an HTTP header): without it 401, from an unknown or
ended subscription 404, and nothing is read further or stored. It is answered 200 once what it
brought is committed, 503 when the EHR could not be read for it (sent again later, or caught
up).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_adapter.api.body import read_json_or_empty
from fhir_adapter.api.deps import in_thread, settings_of, wake_delivery
from fhir_adapter.api.responses import FhirResponse
from fhir_adapter.errors import ConfigError, Issue
from fhir_adapter.fhir import operation_outcome

__all__ = ["router"]

router = APIRouter(tags=["subscriptions"])


def _secret(request: Request) -> str | None:
    scheme, _, value = (request.headers.get("authorization") or "").strip().partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


async def _notification(request: Request, local_id: str, path: str | None) -> Response:
    receiver = getattr(request.app.state, "subscriptions", None)
    if receiver is None:
        raise ConfigError("this server takes no notifications (it has no store)")
    secret = _secret(request)
    await in_thread(receiver.find, local_id, secret)  # 401/404 before the body is read
    settings = settings_of(request)
    body = await read_json_or_empty(request, max_bytes=settings.max_body_bytes,
                                    max_depth=settings.max_json_depth)
    received = await in_thread(receiver.receive, local_id, secret, body, path)
    wake_delivery(request)
    issues = [Issue("information", "informational", None, received.text())]
    issues += [Issue("warning", "processing", None, line) for line in received.errors]
    return FhirResponse(operation_outcome(issues))


@router.post("/notifications/{local_id}", include_in_schema=False)
async def notify(request: Request, local_id: str) -> Any:
    """A notification: a Backport notification Bundle, a classic payload, or empty."""
    return await _notification(request, local_id, None)


@router.api_route("/notifications/{local_id}/{resource_type}/{resource_id}",
                  methods=["PUT", "POST"], include_in_schema=False)
async def notify_resource(request: Request, local_id: str, resource_type: str,
                          resource_id: str) -> Any:
    """A classic R4 rest-hook with payload: the resource, sent to ``endpoint/type/id``."""
    return await _notification(request, local_id, f"{resource_type}/{resource_id}")
