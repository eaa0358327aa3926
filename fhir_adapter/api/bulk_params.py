"""The parameters of a Bulk Data kick-off request, from its query (GET) or Parameters (POST).

Bulk Data Access IG v2, export.html, "Query Parameters": ``_outputFormat`` (the server SHALL
accept ``application/fhir+ndjson``, ``application/ndjson`` and ``ndjson``), ``_since``,
``_type`` (comma-separated, repeatable), ``_typeFilter`` (a FHIR search per type); a parameter
the server does not support is refused, unless the client sent ``Prefer: handling=lenient``,
then ignored. "Bulk Data Kick-off Request": ``Prefer: respond-async`` is required.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from fhir_adapter.errors import Issue, UnusableInput
from fhir_adapter.pipeline.bulk_export import EXPORT_TYPES, FILTER_PARAMS, ExportRequest, TypeFilter

__all__ = ["OUTPUT_FORMATS", "kickoff_request", "parameters_of", "prefer_tokens"]

OUTPUT_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
_KNOWN = frozenset({"_outputFormat", "_since", "_type", "_typeFilter"})


def _refused(name: str, text: str) -> UnusableInput:
    return UnusableInput(text, issues=[Issue("error", "not-supported", name, text)])


def prefer_tokens(header: str | None) -> set[str]:
    """The Prefer header's preferences, lower case (``respond-async``, ``handling=lenient``)."""
    return {part.strip().lower().replace(" ", "") for part in (header or "").split(",")
            if part.strip()}


def parameters_of(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, value) pairs of a kick-off's Parameters resource (export.html: POST kick-off)."""
    if body.get("resourceType") != "Parameters":
        raise _refused("resourceType", "a POST kick-off takes a Parameters resource")
    pairs = []
    for i, parameter in enumerate(body.get("parameter") or []):
        name = parameter.get("name") if isinstance(parameter, dict) else None
        values = [v for k, v in (parameter or {}).items() if k.startswith("value")]
        if not isinstance(name, str) or len(values) != 1 or not isinstance(values[0], str):
            raise _refused(f"Parameters.parameter[{i}]",
                           f"Parameters.parameter[{i}] needs a name and one string-like value")
        pairs.append((name, values[0]))
    return pairs


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise _refused("_since", f"_since={text!r} is not an instant such as "
                       "2026-01-31T12:00:00Z")
    return value


def _type_filter(text: str) -> TypeFilter:
    resource_type, mark, query = text.partition("?")
    allowed = FILTER_PARAMS.get(resource_type)
    if not mark or allowed is None:
        raise _refused("_typeFilter", f"_typeFilter={text!r}: this server filters "
                       f"{', '.join(sorted(FILTER_PARAMS))} only, as Type?param=value")
    params: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in allowed:
            raise _refused("_typeFilter", f"_typeFilter={text!r}: {resource_type} is "
                           f"filtered by {', '.join(sorted(allowed))} only, not {name!r}")
        params.setdefault(name, []).extend(v for v in value.split(",") if v)
    if not params:
        raise _refused("_typeFilter", f"_typeFilter={text!r} has no search parameter")
    return TypeFilter(resource_type, tuple((n, tuple(v)) for n, v in sorted(params.items())))


def kickoff_request(pairs: Iterable[tuple[str, str]], *, lenient: bool,
                    group: str | None) -> ExportRequest:
    """The export asked for; ``UnusableInput`` (400) naming the first parameter refused."""
    types: list[str] = []
    filters: list[TypeFilter] = []
    since: datetime | None = None
    for name, value in pairs:
        if name not in _KNOWN:
            if lenient:
                continue
            raise _refused(name, f"the kick-off parameter {name!r} is not supported (this "
                           "server takes _outputFormat, _since, _type, _typeFilter; send "
                           "Prefer: handling=lenient to have it ignored)")
        if name == "_outputFormat" and value not in OUTPUT_FORMATS:
            raise _refused(name, f"_outputFormat={value!r}: this server writes "
                           "application/fhir+ndjson only")
        if name == "_since":
            if since is not None:
                raise _refused(name, "_since is given more than once")
            since = _instant(value)
        if name == "_type":
            for kind in (v.strip() for v in value.split(",") if v.strip()):
                if kind not in EXPORT_TYPES:
                    if lenient:
                        continue
                    raise _refused(name, f"_type {kind!r} is not published here (types: "
                                   f"{', '.join(EXPORT_TYPES)})")
                types.append(kind)
        if name == "_typeFilter":
            filters.append(_type_filter(value))
    chosen = tuple(t for t in EXPORT_TYPES if t in types) if types else EXPORT_TYPES
    kept = tuple(f for f in filters if f.resource_type in chosen)
    return ExportRequest(chosen, since, kept, group)
