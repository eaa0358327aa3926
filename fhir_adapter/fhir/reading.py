"""Read FHIR input from disk: a JSON Bundle or resource, or an NDJSON file streamed line by line."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from fhir_adapter.errors import NotFhir, UnusableInput, Where

__all__ = [
    "BundleEntry",
    "InputFile",
    "bundle_entries",
    "is_ndjson_file",
    "iter_ndjson",
    "load_json",
    "loads",
    "ndjson_lines",
    "read_path",
]

#: File name endings read as NDJSON whatever their first line looks like.
NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")

OnError = Callable[[UnusableInput], None]


@dataclass(frozen=True, slots=True)
class BundleEntry:
    """One resource to process, as received.

    ``index`` is the 0-based position in ``Bundle.entry`` (0 for a lone resource), or the 1-based
    line number in an NDJSON file. ``resource`` is None for an entry that carries none (a DELETE
    or GET request of a transaction).
    """

    index: int
    full_url: str | None
    resource: dict[str, Any] | None
    request_method: str | None = None
    request_url: str | None = None
    if_none_exist: str | None = None
    if_match: str | None = None  # request.ifMatch: the ETag an update applies to


@dataclass(slots=True)
class InputFile:
    """A file opened for reading: its format, its Bundle type, and its entries (iterate it).

    ``document`` is the whole JSON document (a Bundle or one resource); None for NDJSON, which is
    never held in memory. ``bundle_type`` is ``Bundle.type``, None for a lone resource or NDJSON.
    """

    path: Path
    format: str  # "json" | "ndjson"
    bundle_type: str | None
    document: dict[str, Any] | None
    on_error: OnError | None = None

    def __iter__(self) -> Iterator[BundleEntry]:
        if self.document is None:
            return iter_ndjson(self.path, on_error=self.on_error)
        if self.document.get("resourceType") == "Bundle":
            return bundle_entries(self.document, file=str(self.path))
        return iter([BundleEntry(0, None, self.document)])


def loads(data: bytes | str, *, where: Where | None = None) -> dict[str, Any]:
    """Parse one JSON document that must be a FHIR resource (an object with ``resourceType``)."""
    where = where or Where()
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UnusableInput(f"not JSON ({exc})", where=where) from None
    return _as_resource(document, where)


def load_json(path: Path | str) -> dict[str, Any]:
    """Read a whole JSON file holding one FHIR resource (often a Bundle)."""
    path = Path(path)
    try:
        with _open(path) as fh:
            data = fh.read()
    except OSError as exc:
        raise UnusableInput(
            f"cannot read file ({exc.strerror or exc})", where=Where(str(path))
        ) from None
    return loads(data, where=Where(str(path)))


def read_path(path: Path | str, *, on_error: OnError | None = None) -> InputFile:
    """Open ``path`` as JSON or NDJSON (by its name, else by its first line).

    ``on_error`` receives each unusable NDJSON line and reading goes on; without it, the first
    unusable line raises. A JSON file is checked whole before any entry is yielded.
    """
    path = Path(path)
    if _is_ndjson(path):
        return InputFile(path, "ndjson", None, None, on_error)
    document = load_json(path)
    bundle_type = document.get("type") if document.get("resourceType") == "Bundle" else None
    if document.get("resourceType") == "Bundle":
        list(bundle_entries(document, file=str(path)))  # every entry checked before any is used
    return InputFile(path, "json", bundle_type if isinstance(bundle_type, str) else None, document)


def bundle_entries(bundle: dict[str, Any], *, file: str | None = None) -> Iterator[BundleEntry]:
    """The entries of a Bundle dict, in order; an entry that is not usable raises UnusableInput."""
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise UnusableInput("Bundle.entry is not an array", where=Where(file, None, "Bundle.entry"))
    for index, entry in enumerate(entries):
        element = f"Bundle.entry[{index}]"
        if not isinstance(entry, dict):
            raise UnusableInput(
                "a Bundle entry is not an object", where=Where(file, index, element)
            )
        resource = entry.get("resource")
        if resource is not None:
            resource = _as_resource(resource, Where(file, index, f"{element}.resource"))
        request = entry.get("request")
        request = request if isinstance(request, dict) else {}
        yield BundleEntry(
            index=index,
            full_url=_text(entry.get("fullUrl")),
            resource=resource,
            request_method=_text(request.get("method")),
            request_url=_text(request.get("url")),
            if_none_exist=_text(request.get("ifNoneExist")),
            if_match=_text(request.get("ifMatch")),
        )


def iter_ndjson(path: Path | str, *, on_error: OnError | None = None) -> Iterator[BundleEntry]:
    """Stream an NDJSON file, one resource per line (blank lines skipped), in flat memory."""
    path = Path(path)
    for line_no, line in ndjson_lines(path):
        try:
            resource = loads(line, where=Where(str(path), line=line_no))
        except UnusableInput as exc:
            if on_error is None:
                raise
            on_error(exc)
            continue
        yield BundleEntry(line_no, None, resource)


def ndjson_lines(path: Path | str) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, bytes) of each line that is not blank, unparsed, in flat memory."""
    path = Path(path)
    try:
        fh = _open(path)
    except OSError as exc:
        raise UnusableInput(
            f"cannot read file ({exc.strerror or exc})", where=Where(str(path))
        ) from None
    with fh:
        line_no = 0
        while True:
            try:
                line = fh.readline()
            except (OSError, EOFError) as exc:
                raise UnusableInput(
                    f"cannot read file ({exc})", where=Where(str(path), line=line_no + 1)
                ) from None
            if not line:
                return
            line_no += 1
            if line.strip():
                yield line_no, line


def _as_resource(document: object, where: Where) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise NotFhir("not a FHIR resource (not a JSON object)", where=where)
    if not isinstance(document.get("resourceType"), str) or not document["resourceType"]:
        raise NotFhir("not a FHIR resource (no resourceType)", where=where)
    return document


def _open(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def is_ndjson_file(path: Path | str) -> bool:
    """Whether ``read_path`` reads this file as NDJSON (by its name, else by its first lines)."""
    return _is_ndjson(Path(path))


def _is_ndjson(path: Path) -> bool:
    """By name; else a first line that is a whole JSON object, followed by another line."""
    if path.name.lower().endswith(NDJSON_SUFFIXES):
        return True
    try:
        with _open(path) as fh:
            first = b""
            while not first.strip():
                first = fh.readline(1 << 24)
                if not first:
                    return False
            if not first.lstrip().startswith(b"{"):
                return False
            try:
                orjson.loads(first)
            except orjson.JSONDecodeError:
                return False
            rest = fh.readline(1 << 24)
            while rest and not rest.strip():
                rest = fh.readline(1 << 24)
            return bool(rest)
    except OSError:
        return False  # load_json reports it


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
