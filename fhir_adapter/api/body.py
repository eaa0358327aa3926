"""Request bodies: content type and encoding, size limit while streaming (of the decoded
bytes, for a gzip body), JSON parse and nesting depth; a client that goes away mid-body."""

from __future__ import annotations

import zlib
from typing import Any

from starlette.requests import ClientDisconnect, Request

from fhir_adapter.errors import PayloadTooLarge, UnusableInput, Where
from fhir_adapter.fhir import loads

__all__ = ["ClientGone", "UnsupportedMediaType", "check_content_type", "json_depth_path",
           "read_json", "read_json_or_empty"]

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


class ClientGone(UnusableInput):
    """The client closed the connection before its body was read: nobody to answer."""

    http_status = 400


#: Content-Encoding values read (RFC 9110 section 8.4); gzip bodies are decoded as they stream.
_GZIP = frozenset({"gzip", "x-gzip"})


def _decoder(request: Request) -> Any:
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in _GZIP:
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    raise UnsupportedMediaType(
        f"Content-Encoding {encoding!r} is not supported: send the body as is or gzip",
        where=Where(file="request"))


async def _read_limited(request: Request, limit: int) -> bytes:
    decoder = _decoder(request)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            if decoder is not None:
                chunk = _inflate(decoder, chunk, limit - size)
            size += len(chunk)
            if size > limit:
                raise _too_large(size, limit, decoded=decoder is not None)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGone("the client closed the connection before sending its whole body",
                         where=Where(file="request")) from None
    if decoder is not None and not decoder.eof:
        raise _not_gzip("the gzip stream ends early")
    return b"".join(chunks)


def _inflate(decoder: Any, chunk: bytes, room: int) -> bytes:
    """Decode ``chunk``, at most ``room`` + 1 bytes of it (one more tells it is over)."""
    try:
        return bytes(decoder.decompress(chunk, max(room, 0) + 1))
    except zlib.error as exc:
        raise _not_gzip(str(exc)) from None


def _not_gzip(detail: str) -> UnusableInput:
    return UnusableInput(f"the body is declared Content-Encoding gzip but is not gzip ({detail})",
                         where=Where(file="request"))


def _too_large(size: int, limit: int, *, decoded: bool = False) -> PayloadTooLarge:
    what = "decoded request body" if decoded else "request body"
    return PayloadTooLarge(
        f"{what} of {size} bytes or more is over the limit of {limit} bytes "
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
    found = await read_json_or_empty(request, max_bytes=max_bytes, max_depth=max_depth,
                                     empty_allowed=False)
    assert found is not None
    return found


async def read_json_or_empty(request: Request, *, max_bytes: int, max_depth: int,
                             empty_allowed: bool = True) -> dict[str, Any] | None:
    """As ``read_json``; None for an empty body (a classic R4 rest-hook without payload)."""
    check_content_type(request)
    data = await _read_limited(request, max_bytes)
    if empty_allowed and not data.strip():
        return None
    document = _loads(data)
    deep = json_depth_path(document, max_depth)
    if deep is not None:
        raise PayloadTooLarge(
            f"JSON nesting is deeper than {max_depth} levels at {deep}",
            where=Where(file="request", element=deep),
        )
    return document
