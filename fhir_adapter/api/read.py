"""Reads for research servers: results one by one, searches, and $endpoint-results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_adapter.api.deps import in_thread, pipeline_of, unknown_type
from fhir_adapter.api.responses import FhirResponse, base_url, http_date
from fhir_adapter.api.searchset import CONTROL_PARAMETERS, lenient, searchset, shape_of
from fhir_adapter.api.security import authenticate, require
from fhir_adapter.errors import Issue, NotFound, UnusableInput
from fhir_adapter.publication.search import unknown_parameters
from fhir_adapter.scope import RESULT_TYPES

__all__ = ["parse_instant", "router"]

router = APIRouter(tags=["read"])


def parse_instant(name: str, text: str) -> datetime:
    """A FHIR instant (with a time zone) from a query parameter; 400 naming it otherwise."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        message = f"{name}={text!r} is not an instant such as 2025-01-31T12:00:00Z"
        raise UnusableInput(message, issues=[Issue("error", "value", name, message)])
    return value


def _headers(resource: dict[str, Any]) -> dict[str, str]:
    given = resource.get("meta")
    meta: dict[str, Any] = given if isinstance(given, dict) else {}
    headers = {}
    if meta.get("versionId"):
        headers["ETag"] = f'W/"{meta["versionId"]}"'
    if meta.get("lastUpdated"):
        headers["Last-Modified"] = http_date(str(meta["lastUpdated"]))
    return headers


@router.get("/fhir/ResearchStudy/{id}/$endpoint-results", summary="the result Bundle")
async def endpoint_results(request: Request, id: str) -> Response:
    require(authenticate(request), [("ResearchStudy", "r")])
    since_text = request.query_params.get("_since")
    since = parse_instant("_since", since_text) if since_text else None
    pipeline = pipeline_of(request)
    if id != await in_thread(pipeline.study_id):
        raise NotFound(f"ResearchStudy/{id} is not the study of this server")
    bundle = await in_thread(pipeline.result_bundle, since=since)
    return FhirResponse(bundle)


@router.get("/fhir/{resource_type}/{id}", summary="read one result (pseudonymised)")
async def read_result(request: Request, resource_type: str, id: str) -> Response:
    return await _read(request, resource_type, id, None)


@router.get("/fhir/{resource_type}/{id}/_history/{vid}",
            summary="vread: the current version of a result (older ones are not kept)")
async def vread_result(request: Request, resource_type: str, id: str, vid: str) -> Response:
    return await _read(request, resource_type, id, vid)


async def _read(request: Request, resource_type: str, id: str, vid: str | None) -> Response:
    if resource_type not in RESULT_TYPES:
        raise unknown_type(resource_type, RESULT_TYPES, "serves")
    require(authenticate(request), [(resource_type, "r")])
    resource = await in_thread(pipeline_of(request).read_result, resource_type, id)
    headers = _headers(resource)
    current = str((resource.get("meta") or {}).get("versionId") or "")
    if vid is not None and vid != current:
        raise NotFound(f"{resource_type}/{id} version {vid} is not served: only the current "
                       f"version ({current or 'none'}) of a published result is kept")
    if _matches(request.headers.get("if-none-match"), headers.get("ETag")):
        return Response(status_code=304, headers=headers)  # FHIR http.html, conditional read
    return FhirResponse(resource, headers=headers)


def _matches(if_none_match: str | None, etag: str | None) -> bool:
    """Whether If-None-Match names this ETag (weak comparison, RFC 9110 13.1.2), or is ``*``."""
    if not if_none_match or not etag:
        return False
    wanted = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in wanted or etag.removeprefix("W/") in wanted


@router.get("/fhir/{resource_type}", summary="search results, a page at a time (see the "
            "CapabilityStatement for the parameters of each type)")
async def search_results(request: Request, resource_type: str) -> Response:
    if resource_type not in RESULT_TYPES:
        raise unknown_type(resource_type, RESULT_TYPES, "serves")
    require(authenticate(request), [(resource_type, "s")])
    query = request.query_params.multi_items()
    shape = shape_of(resource_type, query)
    params: dict[str, list[str]] = {}
    for key, value in query:
        if key not in CONTROL_PARAMETERS:
            params.setdefault(key, []).append(value)
    unknown = unknown_parameters(resource_type, params)
    if unknown and not lenient(request.headers.get("prefer")):
        text = (f"{resource_type} has no search parameter {', '.join(map(repr, unknown))}; "
                "send Prefer: handling=lenient to have unknown parameters ignored")
        raise UnusableInput(text, issues=[Issue("error", "not-supported", name, text)
                                          for name in unknown])
    for name in unknown:
        params.pop(name)
    found, pool = await in_thread(pipeline_of(request).search_in_pool, resource_type, params,
                                  everything=bool(shape.revinclude))
    base = base_url(request)
    return FhirResponse(searchset(found, pool, shape, url=f"{base}/{resource_type}", base=base,
                                  query=query, ignored=unknown))
