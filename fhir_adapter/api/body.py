"""Request bodies: content type, size limit while streaming, JSON parse and nesting depth."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from fhir_adapter.errors import PayloadTooLarge, UnusableInput, Where
from fhir_adapter.fhir import loads

__all__ = ["UnsupportedMediaType", "check_content_type", "json_depth_path", "read_json"]

_JSON_TYPES = frozenset({"application/fhir+json", "application/json", "application/json+fhir"})


class UnsupportedMediaType(UnusableInput):
    """A body in a format this server does not read (XML, form data, ...)."""

    http_status = 415
    issue_code = "not-supported"


def check_content_type(request: Request) -> None:
    """Accept FHIR JSON and plain JSON (parameters such as charset allowed); refuse the rest."""
    header = request.headers.get("content-type")
    if header is None:
        return  # a body without a declared type is read as JSON
    media = header.split(";", 1)[0].strip().lower()
    if media not in _JSON_TYPES:
        raise UnsupportedMediaType(
            f"content type {media!r} is not supported: send application/fhir+json "
            "(FHIR XML is not supported)",
            where=Where(file="request"),
        )


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body of {size} bytes or more is over the limit of {limit} bytes "
        "(FHIR_ADAPTER_MAX_BODY_BYTES): split the Bundle",
        where=Where(file="request"),
    )


def json_depth_path(document: Any, limit: int) -> str | None:
    """The FHIRPath of the first container nested deeper than ``limit``, or None if within it."""
    root = document.get("resourceType", "$") if isinstance(document, dict) else "$"
    stack: list[tuple[Any, int, str]] = [(document, 1, str(root))]
    while stack:
        node, depth, path = stack.pop()
        if depth > limit:
            return path
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, dict | list):
                    stack.append((value, depth + 1, f"{path}.{key}"))
        else:
            for index, value in enumerate(node):
                if isinstance(value, dict | list):
                    here = path[: path.rfind("[")] if path.endswith("]") else path
                    stack.append((value, depth + 1, f"{here}[{index}]"))
    return None


def _loads(data: bytes) -> dict[str, Any]:
    if not data.strip():
        raise UnusableInput("the request has no body: a FHIR resource was expected")
    try:
        return loads(data, where=Where(file="request"))
    except UnusableInput as exc:
        if "depth limit" in exc.message or "recursion" in exc.message:
            raise PayloadTooLarge(
                "the JSON is nested too deeply to be read", where=Where(file="request")
            ) from None
        raise


async def read_json(request: Request, *, max_bytes: int, max_depth: int) -> dict[str, Any]:
    """The body as a JSON object, after the content type, size and depth checks."""
    check_content_type(request)
    document = _loads(await _read_limited(request, max_bytes))
    deep = json_depth_path(document, max_depth)
    if deep is not None:
        raise PayloadTooLarge(
            f"JSON nesting is deeper than {max_depth} levels at {deep}",
            where=Where(file="request", element=deep),
        )
    return document
