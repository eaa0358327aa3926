"""Writes: transaction and batch, collection Bundles, create, update and conditional update."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_adapter.api.deps import (
    body_of,
    in_thread,
    pipeline_of,
    unknown_type,
    wake_delivery,
    wrong_type,
)
from fhir_adapter.api.responses import FhirResponse, prefer_return, write_response
from fhir_adapter.api.security import authenticate, require
from fhir_adapter.errors import AdapterError, Issue, UnusableInput
from fhir_adapter.pipeline.requests import UNSUPPORTED_METHODS, refuse_unsupported
from fhir_adapter.scope import WRITE_TYPES
from fhir_adapter.store.tokens import Principal

__all__ = ["JSON_BODY", "in_bundle", "router"]

router = APIRouter(tags=["write"])

#: OpenAPI description of a FHIR JSON request body (the handlers read the raw body themselves).
JSON_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            media: {"schema": {"type": "object", "required": ["resourceType"]}}
            for media in ("application/fhir+json", "application/json")
        },
    }
}
_ACTIONS = {"POST": "c", "PUT": "u", "DELETE": "d", "GET": "r", "PATCH": "u", "HEAD": "r"}


def _entry_needs(bundle: dict[str, Any], *, collection: bool) -> Iterator[tuple[str, str]]:
    entries = bundle.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        given = entry.get("request")
        request: dict[str, Any] = given if isinstance(given, dict) else {}
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if not isinstance(kind, str):
            url = str(request.get("url", ""))
            kind = url.split("?", 1)[0].split("/", 1)[0] or "*"
        if collection:
            yield from ((kind, "c"), (kind, "u"))
        elif str(request.get("method", "POST")).upper() in UNSUPPORTED_METHODS:
            continue  # answered as unsupported, whatever the scopes
        else:
            yield kind, _ACTIONS.get(str(request.get("method", "POST")).upper(), "c")


def _may_write(principal: Principal) -> None:
    """403 at once (before the body is read) for a token that can write nothing at all."""
    if not any(scope.actions & {"c", "u", "d"} for scope in principal.scopes):
        require(principal, [("*", "c")])


def in_bundle(error: AdapterError) -> AdapterError:
    """A failed transaction's error, its expressions rooted at the entry: ``Bundle.entry[i]...``."""
    entry = error.where.entry
    if entry is None:
        return error
    root = f"Bundle.entry[{entry}].resource"
    issues = []
    for issue in error.issues:
        expression = issue.expression or error.where.element
        if expression and not expression.startswith("Bundle"):
            head, dot, rest = expression.partition(".")
            if head[:1].isupper():  # "Observation.valueQuantity.code": a path from the resource
                expression = f"{root}.{rest}" if dot else root
            else:
                expression = f"{root}.{expression}"
        diagnostics = f"entry {entry}: {issue.diagnostics}"
        issues.append(replace(issue, expression=expression or root, diagnostics=diagnostics))
    error.issues = issues
    return error


async def _process_bundle(request: Request, allowed: tuple[str, ...]) -> Response:
    principal = authenticate(request)
    _may_write(principal)
    bundle = await body_of(request)
    if bundle.get("resourceType") != "Bundle":
        raise wrong_type("Bundle", bundle.get("resourceType"))
    kind = bundle.get("type")
    if kind not in allowed:
        text = (
            f"Bundle.type {kind!r} is not accepted at {request.url.path}: "
            f"send {' or '.join(allowed)}"
            + ("" if "collection" in allowed else " (a collection goes to POST [base]/Bundle)")
        )
        raise UnusableInput(text, issues=[Issue("error", "invalid", "Bundle.type", text)])
    if kind == "transaction":
        refuse_unsupported(bundle)  # before the scopes: no scope makes these entries work
    require(principal, _entry_needs(bundle, collection=kind == "collection"))
    try:
        outcome = await in_thread(
            pipeline_of(request).process_bundle,
            bundle,
            sender=principal.name,
            source=f"{request.method} {request.url.path}",
            prefer=prefer_return(request),
            principal=principal,
        )
    except AdapterError as exc:
        raise in_bundle(exc) from None
    wake_delivery(request)
    return FhirResponse(outcome.response)


@router.post("/fhir", summary="transaction or batch Bundle", openapi_extra=JSON_BODY)
@router.post("/fhir/", include_in_schema=False)
async def transaction(request: Request) -> Response:
    return await _process_bundle(request, ("transaction", "batch"))


@router.post("/fhir/Bundle", summary="collection Bundle (each entry create-or-update)",
             openapi_extra=JSON_BODY)
async def collection(request: Request) -> Response:
    return await _process_bundle(request, ("collection",))


async def _single(
    request: Request, resource_type: str, method: str, *, id: str | None = None
) -> Response:
    if resource_type not in WRITE_TYPES:
        raise unknown_type(resource_type, WRITE_TYPES, "accepts")
    principal = authenticate(request)
    require(principal, [(resource_type, "c" if method == "POST" else "u")])
    resource = await body_of(request)
    if resource.get("resourceType") != resource_type:
        raise wrong_type(resource_type, resource.get("resourceType"))
    conditional = None
    if method == "PUT":
        conditional = _conditional(request, resource, id)
    prefer = prefer_return(request)
    outcome = await in_thread(
        pipeline_of(request).process_resource,
        resource,
        sender=principal.name,
        method=method,
        id=id,
        conditional=conditional,
        prefer=prefer,
        if_match=request.headers.get("if-match") if method == "PUT" else None,
        principal=principal,
    )
    wake_delivery(request)
    return write_response(
        request,
        status=outcome.status,
        prefer=prefer,
        resource=outcome.resource,
        outcome=outcome.outcome,
        location=outcome.location,
        etag=outcome.etag,
        last_modified=outcome.last_modified,
    )


def _conditional(request: Request, resource: dict[str, Any], id: str | None) -> str | None:
    kind = resource["resourceType"]
    if id is not None:
        if resource.get("id") != id:
            text = f"{kind}.id {resource.get('id')!r} must equal the id in the URL ({id!r})"
            raise UnusableInput(text, issues=[Issue("error", "invalid", f"{kind}.id", text)])
        return None
    query = request.url.query  # still percent-encoded, as in a conditional reference
    if not query:
        text = f"PUT [base]/{kind} needs a search (?identifier=system|value) or an id"
        raise UnusableInput(text, issues=[Issue("error", "required", f"{kind}.identifier", text)])
    return query


@router.post("/fhir/{resource_type}", summary="create (an already-stored resource: update)",
             openapi_extra=JSON_BODY)
async def create(request: Request, resource_type: str) -> Response:
    return await _single(request, resource_type, "POST")


@router.put("/fhir/{resource_type}/{id}", summary="update", openapi_extra=JSON_BODY)
async def update(request: Request, resource_type: str, id: str) -> Response:
    return await _single(request, resource_type, "PUT", id=id)


@router.put("/fhir/{resource_type}", summary="conditional update (?identifier=system|value)",
            openapi_extra=JSON_BODY)
async def conditional_update(request: Request, resource_type: str) -> Response:
    return await _single(request, resource_type, "PUT")
