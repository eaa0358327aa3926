"""Read and search the published (pseudonymised) result resources, as a FHIR server would."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fhir_adapter.errors import NotFound, UnusableInput, Where
from fhir_adapter.fhir.primitives import parse_datetime
from fhir_adapter.scope import RESULT_SEARCH_PARAMS

__all__ = ["SEARCH_PARAMETERS", "read", "search"]

#: The search parameters results answer to (RESULTS.md "Pulling"), plus ``_id``.
SEARCH_PARAMETERS = tuple(RESULT_SEARCH_PARAMS)
_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le")
Resource = dict[str, Any]


def read(resources: Iterable[Resource], resource_type: str, id: str) -> Resource:
    for resource in resources:
        if resource.get("resourceType") == resource_type and resource.get("id") == id:
            return resource
    raise NotFound(f"{resource_type}/{id} is not a published result",
                   where=Where(element=resource_type))


def search(resources: Iterable[Resource], resource_type: str,
           params: Mapping[str, Sequence[str]]) -> list[Resource]:
    """The resources of ``resource_type`` matching every parameter (several values of one
    parameter, comma-separated or repeated: any of them)."""
    tests: list[Callable[[Resource], bool]] = []
    for name, values in params.items():
        if name not in SEARCH_PARAMETERS:
            raise UnusableInput(
                f"unknown search parameter {name!r} (supported: {', '.join(SEARCH_PARAMETERS)})",
                where=Where(element=name))
        if name == "_lastUpdated":  # repeated: all must hold (a range)
            tests += [_last_updated(v) for v in values]
            continue
        wanted = [part for v in values for part in v.split(",") if part]
        tests.append(_ANY[name](wanted))
    return [r for r in resources
            if r.get("resourceType") == resource_type and all(t(r) for t in tests)]


def _token(text: str) -> tuple[str | None, str]:
    """``s|v`` -> (s, v); ``|v`` -> ("", v) (no system); ``v`` -> (None, v) (any system)."""
    if "|" in text:
        system, value = text.split("|", 1)
        return system, value
    return None, text


def _token_match(items: Iterable[Mapping[str, Any]], wanted: list[str], field: str) -> bool:
    for text in wanted:
        system, value = _token(text)
        for item in items:
            if str(item.get(field, "")) != value:
                continue
            if system is None or str(item.get("system") or "") == system:
                return True
    return False


def _by_id(wanted: list[str]) -> Callable[[Resource], bool]:
    return lambda r: str(r.get("id")) in wanted


def _by_identifier(wanted: list[str]) -> Callable[[Resource], bool]:
    return lambda r: _token_match(r.get("identifier") or [], wanted, "value")


def _by_code(wanted: list[str]) -> Callable[[Resource], bool]:
    return lambda r: _token_match((r.get("code") or {}).get("coding") or [], wanted, "code")


def _by_subject(wanted: list[str]) -> Callable[[Resource], bool]:
    def test(resource: Resource) -> bool:
        ref = resource.get("subject") or resource.get("individual") or {}
        text = str(ref.get("reference", "")) if isinstance(ref, dict) else ""
        return any(text == w or (w and "/" not in w and text.endswith(f"/{w}")) for w in wanted)
    return test


_ANY: dict[str, Callable[[list[str]], Callable[[Resource], bool]]] = {
    "_id": _by_id, "identifier": _by_identifier, "code": _by_code, "subject": _by_subject,
}


def _last_updated(text: str) -> Callable[[Resource], bool]:
    """A ``_lastUpdated`` test: the value names a range (a day, a second ...), the prefix says
    how the resource's instant relates to it (FHIR search, section "date")."""
    prefix = text[:2] if text[:2] in _PREFIXES else "eq"
    low, high = _range(text[2:] if text[:2] in _PREFIXES else text)

    def test(resource: Resource) -> bool:
        stamp = (resource.get("meta") or {}).get("lastUpdated")
        if not stamp:
            return False
        at = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        inside = low <= at < high
        return {
            "eq": inside, "ne": not inside, "gt": at >= high, "ge": at >= low,
            "lt": at < low, "le": at < high,
        }[prefix]
    return test


def _range(raw: str) -> tuple[datetime, datetime]:
    try:
        parsed = parse_datetime(raw)
    except ValueError as exc:
        raise UnusableInput(f"_lastUpdated: {exc}", where=Where(element="_lastUpdated")) from None
    if parsed.at is not None:
        step = timedelta(microseconds=1) if "." in raw else timedelta(seconds=1)
        return parsed.at, parsed.at + step
    first = parsed.value
    low = datetime(first.year, first.month, first.day, tzinfo=UTC)
    if parsed.precision == "day":
        return low, low + timedelta(days=1)
    if parsed.precision == "month":
        year, month = (first.year + 1, 1) if first.month == 12 else (first.year, first.month + 1)
        return low, datetime(year, month, 1, tzinfo=UTC)
    return low, datetime(first.year + 1, 1, 1, tzinfo=UTC)
