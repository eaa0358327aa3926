"""POST /fhir/{type}/$validate: an OperationOutcome about a resource or a Bundle; nothing stored."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_adapter.api.deps import body_of, in_thread, pipeline_of, unknown_type, wrong_type
from fhir_adapter.api.responses import FhirResponse
from fhir_adapter.api.security import authenticate, require
from fhir_adapter.api.write import JSON_BODY
from fhir_adapter.errors import Issue, UnusableInput
from fhir_adapter.scope import VALIDATE_TYPES

__all__ = ["router"]

router = APIRouter(tags=["validate"])


def _from_parameters(parameters: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The ``resource`` and ``profile`` of a $validate Parameters body."""
    resource: dict[str, Any] | None = None
    profile: str | None = None
    for index, part in enumerate(parameters.get("parameter") or []):
        if not isinstance(part, dict):
            continue
        if part.get("name") == "resource" and isinstance(part.get("resource"), dict):
            resource = part["resource"]
        elif part.get("name") == "profile":
            profile = part.get("valueUri") or part.get("valueCanonical")
        elif part.get("name") == "mode" and part.get("valueCode") not in (None, "create", "update"):
            text = "only the modes create and update are supported"
            expression = f"Parameters.parameter[{index}].valueCode"
            raise UnusableInput(text, issues=[Issue("error", "not-supported", expression, text)])
    if resource is None:
        text = "a Parameters body needs a parameter 'resource' holding the resource to validate"
        raise UnusableInput(text, issues=[Issue("error", "required", "Parameters.parameter", text)])
    return resource, profile


@router.post("/fhir/{resource_type}/$validate", summary="validate; nothing is stored",
             openapi_extra=JSON_BODY)
async def validate(request: Request, resource_type: str) -> Response:
    if resource_type not in VALIDATE_TYPES:
        raise unknown_type(resource_type, VALIDATE_TYPES, "validates")
    principal = authenticate(request)
    # INTERFACES.md, scopes: the answer depends on who is enrolled (trial-patient applies to
    # enrolled patients only), so only a caller that may write the type asks it
    if not (principal.allows(resource_type, "c") or principal.allows(resource_type, "u")):
        require(principal, [(resource_type, "c")])
    document = await body_of(request)
    profile = request.query_params.get("profile")
    if document.get("resourceType") == "Parameters":
        document, given = _from_parameters(document)
        profile = given or profile
    if document.get("resourceType") != resource_type:
        raise wrong_type(resource_type, document.get("resourceType"))
    outcome = await in_thread(
        pipeline_of(request).validate, document, resource_type=resource_type, profile=profile
    )
    return FhirResponse(outcome)
