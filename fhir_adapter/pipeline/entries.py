"""What comes in, as requests: Bundle entries, NDJSON lines, the files of the paths given."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from fhir_adapter.errors import UnusableInput, Where
from fhir_adapter.fhir import BundleEntry, loads
from fhir_adapter.pipeline.requests import Request

__all__ = [
    "bundle_requests",
    "checked_line_requests",
    "document_requests",
    "expand_inputs",
    "expand_paths",
    "file_size",
]

#: Where a line that cannot be read is told (the load goes on without it).
Unreadable = Callable[[UnusableInput], None]


def bundle_requests(entries: Iterable[BundleEntry]) -> Iterator[Request]:
    """Each entry of a Bundle (or each line of a file, read as one) as a request."""
    for e in entries:
        resource = e.resource
        rtype = str(resource.get("resourceType", "")) if resource else ""
        if not rtype and e.request_url:
            rtype = e.request_url.split("?")[0].split("/")[0]
        method = (e.request_method or "POST").upper()
        # Bundle.entry.request.ifMatch (R4 bundle.html, "Transaction Processing Rules"): the
        # update applies to the version named, as an If-Match header does on a PUT
        yield Request(e.index, method, rtype, resource, e.full_url, e.request_url,
                      e.if_none_exist, if_match=e.if_match if method == "PUT" else None)


def checked_line_requests(lines: Iterable[tuple[int, bytes, bool]], path: Path,
                          unreadable: Unreadable) -> Iterator[Request]:
    """NDJSON lines a worker has validated: read here (an unreadable one is told and left),
    marked ``validated`` when the worker found no error."""
    for line_no, text, passed in lines:
        try:
            resource = loads(text, where=Where(str(path), line=line_no))
        except UnusableInput as exc:
            unreadable(exc)
            continue
        request = Request(line_no, "POST", str(resource["resourceType"]), resource)
        request.validated = passed
        yield request


def document_requests(document: dict[str, Any]) -> list[Request]:
    """The resources of a document to validate, as requests (a Bundle: one per entry)."""
    if document.get("resourceType") != "Bundle":
        return [Request(0, "POST", str(document.get("resourceType")), document)]
    entries = document.get("entry")
    found = []
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            full_url = entry.get("fullUrl")
            found.append(Request(index, "POST", str(resource.get("resourceType")), resource,
                                 full_url if isinstance(full_url, str) else None))
    return found


def expand_paths(paths: Iterable[Path | str]) -> Iterator[Path]:
    """Files as given; directories walked, their files in sorted order."""
    for path, _ in expand_inputs(paths):
        yield path


def expand_inputs(paths: Iterable[Path | str]) -> Iterator[tuple[Path, bool]]:
    """Each file with whether it was found by walking a directory (True) or named (False)."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for found in sorted(p for p in path.rglob("*") if p.is_file() and _is_input(p)):
                yield found, True
        elif path.exists():
            yield path, False
        else:
            raise UnusableInput("no such file or directory", where=Where(str(path)))


def _is_input(path: Path) -> bool:
    name = path.name.lower()
    return not name.startswith(".") and name.endswith((".json", ".ndjson", ".jsonl", ".gz"))


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
