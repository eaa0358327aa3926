"""Bulk Data Access IG v2 ``$export`` of the published results: kick-off, status, files.

export.html: "Bulk Data Kick-off Request" (GET or POST ``[base]/$export`` and
``[base]/Group/[id]/$export``; 202 with an absolute ``Content-Location``), "Bulk Data Delete
Request" (202, then 404), "Bulk Data Status Request" (202 with ``X-Progress`` and
``Retry-After`` while in progress, 429 to a client polling too often, 4XX/5XX with an
OperationOutcome on error, 200 with the manifest and an ``Expires`` header when complete),
"Bulk Data Output File Request" (``application/fhir+ndjson``, with the access token when the
manifest says ``requiresAccessToken``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from fhir_adapter.api.bulk_params import kickoff_request, parameters_of, prefer_tokens
from fhir_adapter.api.deps import body_of, in_thread, pipeline_of
from fhir_adapter.api.errors import outcome_response
from fhir_adapter.api.responses import FhirResponse, base_url, http_date
from fhir_adapter.api.security import authenticate, require
from fhir_adapter.errors import Issue, NotFound, UnusableInput
from fhir_adapter.store.exports import COMPLETED, FAILED, ExportJob
from fhir_adapter.store.tokens import Principal

__all__ = ["NDJSON", "POLL_SECONDS", "router"]

router = APIRouter(tags=["bulk data"])

NDJSON = "application/fhir+ndjson"
#: What ``Retry-After`` asks between status requests; one sooner than half of it gets 429.
POLL_SECONDS = 1
_TOO_SOON = timedelta(seconds=POLL_SECONDS / 2)
_ACCEPTED = ("", "*/*", "application/fhir+json", "application/json")


def _exports(request: Request) -> Any:
    exports = getattr(request.app.state, "exports", None)
    if exports is None:
        raise NotFound("this server runs no Bulk Data export")
    return exports


def _check_headers(request: Request) -> bool:
    """``Prefer: respond-async`` is required; returns whether ``handling=lenient`` was sent."""
    prefer = prefer_tokens(request.headers.get("prefer"))
    if "respond-async" not in prefer:
        text = "a Bulk Data kick-off needs the header Prefer: respond-async"
        raise UnusableInput(text, issues=[Issue("error", "required", "Prefer", text)])
    accept = request.headers.get("accept", "").split(";")[0].strip().lower()
    if accept not in _ACCEPTED:
        text = f"Accept: {accept} is not supported by a kick-off (application/fhir+json)"
        raise UnusableInput(text, issues=[Issue("error", "not-supported", "Accept", text)])
    return "handling=lenient" in prefer


async def _kickoff(request: Request, group: str | None) -> Response:
    principal = authenticate(request)
    exports = _exports(request)
    lenient = _check_headers(request)
    if request.method == "POST":
        pairs = parameters_of(await body_of(request))
    else:
        pairs = list(request.query_params.multi_items())
    asked = kickoff_request(pairs, lenient=lenient, group=group)
    require(principal, [(kind, "r") for kind in asked.types])
    if group is not None and group != await in_thread(pipeline_of(request).study_id):
        raise NotFound(f"Group/{group} is not the group of this server's study")
    job = await in_thread(exports.jobs.create, request=str(request.url),
                          parameters=asked.to_json(), client=principal.name)
    exports.wake()
    location = f"{base_url(request)}/$export-status/{job.id}"
    text = f"export {job.id} accepted; poll {location}"
    return outcome_response(202, [Issue("information", "informational", None, text)],
                            {"Content-Location": location})


@router.get("/fhir/$export", summary="Bulk Data export of every published result")
@router.post("/fhir/$export", include_in_schema=False)
async def export_system(request: Request) -> Response:
    return await _kickoff(request, None)


@router.get("/fhir/Group/{id}/$export", summary="Bulk Data export of the study's group")
@router.post("/fhir/Group/{id}/$export", include_in_schema=False)
async def export_group(request: Request, id: str) -> Response:
    return await _kickoff(request, id)


async def _own_job(request: Request, job_id: str, principal: Principal) -> ExportJob:
    job: ExportJob | None = None
    if len(job_id) == 32 and all(c in "0123456789abcdef" for c in job_id):
        job = await in_thread(_exports(request).jobs.get, job_id)
    if job is None or job.client != principal.name:  # another client's job is not shown
        raise NotFound(f"no export {job_id} (it was deleted, expired, or never made)")
    return job


@router.get("/fhir/$export-status/{job_id}", summary="Bulk Data export status")
async def export_status(request: Request, job_id: str) -> Response:
    principal = authenticate(request)
    job = await _own_job(request, job_id, principal)
    now = datetime.now(UTC)
    before = await in_thread(_exports(request).jobs.polled, job.id, now)
    if job.status == COMPLETED:
        return JSONResponse(_manifest(request, job), headers={
            "Expires": http_date(job.expires_at or now)})
    if job.status == FAILED:
        issue = Issue("error", "exception", None, job.error or "the export failed")
        return outcome_response(500, [issue])
    headers = {"Retry-After": str(POLL_SECONDS), "X-Progress": _progress(job)}
    if before is not None and now - before < _TOO_SOON:
        text = f"status requested again within {_TOO_SOON.total_seconds():g} s; wait as " \
               "Retry-After says"
        return outcome_response(429, [Issue("error", "throttled", None, text)], headers)
    return Response(status_code=202, headers=headers)


@router.delete("/fhir/$export-status/{job_id}", summary="cancel or release a Bulk Data export")
async def export_delete(request: Request, job_id: str) -> Response:
    principal = authenticate(request)
    job = await _own_job(request, job_id, principal)
    exports = _exports(request)
    await in_thread(exports.jobs.cancel, job.id)
    await in_thread(exports.files.remove, job.id)
    text = f"export {job.id} deleted; its files are removed"
    return outcome_response(202, [Issue("information", "informational", None, text)])


@router.get("/fhir/$export-file/{job_id}/{name}", summary="one NDJSON file of an export")
async def export_file(request: Request, job_id: str, name: str) -> Response:
    principal = authenticate(request)
    job = await _own_job(request, job_id, principal)
    path = _exports(request).files.path(job.id, name) if job.status == COMPLETED else None
    if path is None:
        raise NotFound(f"export {job.id} has no file {name}")
    kind = name.split("-", 1)[1].removesuffix(".ndjson")
    require(principal, [(kind if kind != "Bundle" else "Observation", "r")])
    return FileResponse(path, media_type=NDJSON)


@router.get("/fhir/Group/{id}", summary="the study's group: its participants")
async def read_group(request: Request, id: str) -> Response:
    require(authenticate(request), [("Group", "r")])
    group = await in_thread(_exports(request).group)
    if id != group["id"]:
        raise NotFound(f"Group/{id} is not the group of this server's study")
    return FhirResponse(group)


@router.get("/fhir/Group", summary="search groups (the study's one)")
async def search_group(request: Request) -> Response:
    require(authenticate(request), [("Group", "s")])
    group = await in_thread(_exports(request).group)
    wanted = request.query_params.get("_id")
    found = [group] if wanted in (None, group["id"]) else []
    return FhirResponse({"resourceType": "Bundle", "type": "searchset", "total": len(found),
                         "entry": [{"fullUrl": f"{base_url(request)}/Group/{g['id']}",
                                    "resource": g, "search": {"mode": "match"}} for g in found]})


def _progress(job: ExportJob) -> str:
    if job.status == "queued":
        return "queued"
    if not job.total:
        return "starting"
    return f"{job.done} of {job.total} participants ({100 * job.done // job.total}%)"


def _manifest(request: Request, job: ExportJob) -> dict[str, Any]:
    output = job.output or {}
    files = output.get("files", [])
    base = f"{base_url(request)}/$export-file/{job.id}"

    def listed(kind: str) -> list[dict[str, Any]]:
        return [{"type": f["type"] if kind != "deleted" else "Bundle",
                 "url": f"{base}/{f['name']}", "count": f["count"]}
                for f in files if f["kind"] == kind]

    return {"transactionTime": output.get("transactionTime"), "request": job.request,
            "requiresAccessToken": True, "output": listed("output"),
            "deleted": listed("deleted"), "error": listed("error")}
