"""GET /fhir/metadata: the CapabilityStatement, the one call that needs no token."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_adapter.api.capability import capability_statement
from fhir_adapter.api.responses import FhirResponse, base_url

__all__ = ["router"]

router = APIRouter(tags=["metadata"])


@router.get("/fhir/metadata", summary="CapabilityStatement (no token needed)")
async def metadata(request: Request) -> Response:
    return FhirResponse(capability_statement(base_url(request)))
