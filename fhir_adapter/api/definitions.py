"""The project's conformance resources (``profiles/``: StructureDefinitions, ValueSets,
CodeSystems), served read-only by id and searched by ``url``, as a FHIR server serves the
profiles it claims (CapabilityStatement ``supportedProfile``)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_adapter.api.responses import FhirResponse, base_url
from fhir_adapter.api.security import authenticate, require
from fhir_adapter.errors import Issue, NotFound, UnusableInput
from fhir_adapter.paths import profiles_dir

__all__ = ["DEFINITION_TYPES", "definitions", "router", "supported_profiles"]

router = APIRouter(tags=["definitions"])

#: The conformance resource types served.
DEFINITION_TYPES = ("CodeSystem", "StructureDefinition", "ValueSet")
#: Their search parameters (besides paging, which a few dozen resources do not need).
DEFINITION_SEARCH = ("_id", "url")
_ALLOWED = frozenset({*DEFINITION_SEARCH, "_count", "_format", "_pretty", "_summary"})


@cache
def definitions() -> dict[tuple[str, str], dict[str, Any]]:
    """(type, id) -> the resource, for every JSON file of ``profiles/``."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(profiles_dir().glob("*.json")):
        resource = json.loads(path.read_text(encoding="utf-8"))
        if resource.get("resourceType") in DEFINITION_TYPES and resource.get("id"):
            found[(resource["resourceType"], resource["id"])] = resource
    return found


def supported_profiles() -> dict[str, list[str]]:
    """Resource type -> the canonical URLs of the profiles that constrain it."""
    out: dict[str, list[str]] = {}
    for (kind, _), resource in sorted(definitions().items()):
        if kind == "StructureDefinition" and resource.get("kind") == "resource":
            out.setdefault(str(resource["type"]), []).append(str(resource["url"]))
    return out


def _entry(base: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
            "resource": resource, "search": {"mode": "match"}}


for _kind in DEFINITION_TYPES:

    def _read(request: Request, id: str, kind: str = _kind) -> Response:
        require(authenticate(request), [(kind, "r")])
        resource = definitions().get((kind, id))
        if resource is None:
            raise NotFound(f"{kind}/{id} is not one of this server's definitions")
        return FhirResponse(resource)

    def _search(request: Request, kind: str = _kind) -> Response:
        require(authenticate(request), [(kind, "s")])
        query = request.query_params
        unknown = [k for k in query if k not in _ALLOWED]
        if unknown:
            text = f"{kind} is searched by {', '.join(DEFINITION_SEARCH)} only"
            raise UnusableInput(text, issues=[Issue("error", "not-supported", n, text)
                                              for n in unknown])
        urls, ids = set(query.getlist("url")), set(query.getlist("_id"))
        found = [r for (k, _), r in sorted(definitions().items()) if k == kind
                 and (not urls or r.get("url") in urls) and (not ids or r.get("id") in ids)]
        base = base_url(request)
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                                  "total": len(found),
                                  "link": [{"relation": "self", "url": str(request.url)}]}
        if found and query.get("_summary") != "count":
            bundle["entry"] = [_entry(base, r) for r in found]
        return FhirResponse(bundle)

    router.add_api_route(f"/fhir/{_kind}/{{id}}", _read, methods=["GET"],
                         summary=f"read a {_kind} of this server (profiles/)")
    router.add_api_route(f"/fhir/{_kind}", _search, methods=["GET"],
                         summary=f"search the {_kind}s of this server by url or _id")
