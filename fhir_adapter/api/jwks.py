"""``GET /.well-known/jwks.json``: the public keys the adapter signs its SMART client assertions
with (SMART App Launch 2.2, client-confidential-asymmetric.html, "Registering a client": a JWK
Set URL is the strongly preferred way for an EHR to know them). No token needed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fhir_adapter.errors import ConfigError
from fhir_adapter.outbound.smart import public_jwks

__all__ = ["router"]

router = APIRouter()


@router.get("/.well-known/jwks.json", include_in_schema=False)
def jwks(request: Request) -> Any:
    key_file = request.app.state.settings.ehr_key_file
    try:
        keys = public_jwks([key_file]) if key_file.is_file() else {"keys": []}
    except ConfigError:
        keys = {"keys": []}
    return JSONResponse(keys, headers={"Cache-Control": "max-age=300"})
