"""Searchset Bundles (FHIR search.html, http.html "paging"): a page at a time by a keyset
cursor, ``_count``, ``_summary=count``, ``_elements``, ``_total``, ``_sort``, ``_include`` and
``_revinclude``, and the parameters ``Prefer: handling=lenient`` leaves out.

A page is found by where the last one ended (the sort key of its last entry, carried in the
``next`` link's ``_cursor``), not by an offset: a resource written between two pages neither
shifts what follows nor is seen twice."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fhir_adapter.errors import Issue, UnusableInput
from fhir_adapter.publication.search import effective_range

__all__ = [
    "CONTROL_PARAMETERS",
    "DEFAULT_COUNT",
    "INCLUDES",
    "MAX_COUNT",
    "REVINCLUDES",
    "SORTS",
    "Shape",
    "lenient",
    "searchset",
    "shape_of",
]

#: Entries per page when ``_count`` is not given, and the most a page holds.
DEFAULT_COUNT = 50
MAX_COUNT = 500
#: Parameters that shape the answer; the search itself never sees them.
CONTROL_PARAMETERS = frozenset({"_count", "_summary", "_elements", "_total", "_sort", "_include",
                                "_revinclude", "_cursor", "_format", "_pretty",
                                "_totalMethod"})  # fhirpy's count(): every total is exact
#: ``_sort`` keys (a leading ``-``: descending); ``_id`` breaks ties.
SORTS = ("_id", "date", "_lastUpdated")
#: ``_include`` of each searched type: the references it follows.
INCLUDES = {"Observation": {"Observation:subject": ("subject",), "Observation:focus": ("focus",),
                            "Observation:derived-from": ("derivedFrom",)}}
#: ``_revinclude`` of each searched type: (type, element) whose references name a match.
REVINCLUDES = {"Patient": {"Observation:subject": ("Observation", "subject")}}
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
             "code": "SUBSETTED", "display": "subsetted"}
_ALWAYS = ("resourceType", "id", "meta")
Resource = dict[str, Any]
Key = list[Any]


@dataclass(frozen=True, slots=True)
class Shape:
    """How to answer a search, from its control parameters."""

    count: int
    count_only: bool
    elements: tuple[str, ...] | None
    total: bool
    sort: tuple[tuple[str, bool], ...]  # (key, descending)
    include: tuple[str, ...]
    revinclude: tuple[str, ...]
    cursor: tuple[str, Key] | None  # ("after" | "before", sort key)


def _bad(name: str, text: str) -> UnusableInput:
    return UnusableInput(f"{name}: {text}", issues=[Issue("error", "invalid", name,
                                                          f"{name}: {text}")])


def shape_of(resource_type: str, query: Sequence[tuple[str, str]]) -> Shape:
    """The Shape of a search of ``resource_type``; 400 naming a control parameter whose
    value this server cannot honour (rather than answer as if it were not there)."""
    given: dict[str, list[str]] = {}
    for name, value in query:
        given.setdefault(name, []).append(value)
    count = _count(given.get("_count", []))
    summary = (given.get("_summary") or ["false"])[-1]
    if summary not in ("count", "false"):
        raise _bad("_summary", f"{summary!r} is not supported (count or false)")
    total = (given.get("_total") or ["accurate"])[-1]
    if total not in ("none", "estimate", "accurate"):
        raise _bad("_total", f"{total!r} is none of none, estimate, accurate")
    elements = tuple(e.strip() for v in given.get("_elements", []) for e in v.split(",")
                     if e.strip()) or None
    includes = _listed("_include", given, INCLUDES.get(resource_type, {}), resource_type)
    revincludes = _listed("_revinclude", given, REVINCLUDES.get(resource_type, {}),
                          resource_type)
    return Shape(count, summary == "count" or count == 0, elements, total != "none",
                 _sort(given.get("_sort", [])), includes, revincludes,
                 _cursor(given.get("_cursor", [])))


def _count(values: list[str]) -> int:
    if not values:
        return DEFAULT_COUNT
    text = values[-1]
    if not text.isdigit():
        raise _bad("_count", f"{text!r} is not a whole number")
    return min(int(text), MAX_COUNT)


def _listed(name: str, given: dict[str, list[str]], allowed: dict[str, Any],
            resource_type: str) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(given.get(name, [])))
    for value in wanted:
        if value not in allowed:
            choice = ", ".join(allowed) or "none"
            raise _bad(name, f"{value!r} is not supported on {resource_type} ({choice})")
    return wanted


def _sort(values: list[str]) -> tuple[tuple[str, bool], ...]:
    keys: list[tuple[str, bool]] = []
    for part in (p.strip() for v in values for p in v.split(",")):
        if not part:
            continue
        name = part.removeprefix("-")
        if name not in SORTS:
            raise _bad("_sort", f"{part!r}: sort by {', '.join(SORTS)} (- for descending)")
        keys.append((name, part.startswith("-")))
    if not any(name == "_id" for name, _ in keys):
        keys.append(("_id", False))  # a total order: every entry has one place
    return tuple(keys)


def _cursor(values: list[str]) -> tuple[str, Key] | None:
    if not values:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(values[-1].encode() + b"=="))
        direction, key = data["d"], data["k"]
        if direction not in ("after", "before") or not isinstance(key, list):
            raise ValueError(direction)
    except (ValueError, KeyError, TypeError):
        raise _bad("_cursor", "not a cursor of this server (follow the Bundle's links)") from None
    return direction, key


def _token(direction: str, key: Key) -> str:
    raw = json.dumps({"d": direction, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _instant(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _value(resource: Resource, name: str) -> Any:
    if name == "_id":
        return str(resource.get("id", ""))
    if name == "_lastUpdated":
        return _instant((resource.get("meta") or {}).get("lastUpdated"))
    span = effective_range(resource)
    return span[0].timestamp() if span else None


def _compare(spec: tuple[tuple[str, bool], ...]) -> Callable[[Key, Key], int]:
    def compare(a: Key, b: Key) -> int:
        for (_, descending), x, y in zip(spec, a, b, strict=True):
            if x == y:
                continue
            if x is None:  # no value: last, whichever the direction
                return 1
            if y is None:
                return -1
            order = -1 if x < y else 1
            return -order if descending else order
        return 0
    return compare


def lenient(prefer: str | None) -> bool:
    """``Prefer: handling=lenient`` (FHIR search.html, "Handling errors")."""
    for part in (prefer or "").split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "handling" and value.strip().strip('"').lower() == "lenient":
            return True
    return False


def searchset(found: list[Resource], pool: Iterable[Resource], shape: Shape, *, url: str,
              base: str, query: Sequence[tuple[str, str]],
              ignored: Sequence[str] = ()) -> Resource:
    """The searchset Bundle of the page ``shape`` names among ``found`` (every match, in
    any order); ``pool`` holds what ``_include``/``_revinclude`` may add; ``url`` is the search
    without its query, ``query`` the parameters as given; ``ignored``: left out (lenient)."""
    bundle: Resource = {"resourceType": "Bundle", "type": "searchset"}
    if shape.total:
        bundle["total"] = len(found)
    links = [{"relation": "self", "url": _link(url, query, None)}]
    entries: list[Resource] = []
    if not shape.count_only:
        compare = _compare(shape.sort)

        def by_key(a: tuple[Key, Resource], b: tuple[Key, Resource]) -> int:
            return compare(a[0], b[0])

        keyed = sorted(((_key(r, shape), r) for r in found), key=functools.cmp_to_key(by_key))
        page, before, after = _page(keyed, shape)
        if shape.cursor is not None:
            links.append({"relation": "first", "url": _link(url, query, "")})
        if before and page:
            links.append({"relation": "previous",
                          "url": _link(url, query, _token("before", page[0][0]))})
        if after:
            links.append({"relation": "next", "url": _link(url, query,
                                                           _token("after", page[-1][0]))})
        matches = [r for _, r in page]
        entries = [_entry(base, _subset(r, shape.elements), "match") for r in matches]
        entries += [_entry(base, r, "include") for r in _included(matches, pool, shape)]
    if ignored:
        entries.append(_entry(base, _ignored_outcome(ignored), "outcome"))
    bundle["link"] = links
    if entries:
        bundle["entry"] = entries
    return bundle


def _key(resource: Resource, shape: Shape) -> Key:
    return [_value(resource, name) for name, _ in shape.sort]


def _page(keyed: list[tuple[Key, Resource]], shape: Shape) -> tuple[
        list[tuple[Key, Resource]], bool, bool]:
    """(the page, whether entries come before it, whether entries come after it)."""
    compare = _compare(shape.sort)
    if shape.cursor is None:
        return keyed[:shape.count], False, len(keyed) > shape.count
    direction, mark = shape.cursor
    if len(mark) != len(shape.sort):
        raise _bad("_cursor", "made for another _sort (follow the Bundle's links)")
    if direction == "after":
        rest = [item for item in keyed if compare(item[0], mark) > 0]
        page = rest[:shape.count]
        return page, len(rest) < len(keyed), len(rest) > len(page)
    earlier = [item for item in keyed if compare(item[0], mark) < 0]
    page = earlier[-shape.count:] if shape.count else []
    return page, len(earlier) > len(page), len(earlier) < len(keyed)


def _link(url: str, query: Sequence[tuple[str, str]], cursor: str | None) -> str:
    """The search again: the same parameters, the cursor replaced (None: as given)."""
    kept = [(k, v) for k, v in query if cursor is None or k != "_cursor"]
    if cursor:
        kept.append(("_cursor", cursor))
    return f"{url}?{urlencode(kept)}" if kept else url


def _entry(base: str, resource: Resource, mode: str) -> Resource:
    entry: Resource = {"resource": resource, "search": {"mode": mode}}
    if resource.get("id"):
        entry = {"fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}", **entry}
    return entry


def _subset(resource: Resource, elements: tuple[str, ...] | None) -> Resource:
    """``_elements``: the named elements (a choice by its name without ``[x]``: ``value``),
    and what every resource keeps; the copy is tagged SUBSETTED (FHIR search.html)."""
    if elements is None:
        return resource
    wanted = {e.split(".", 1)[0] for e in elements}
    kept = {k: v for k, v in resource.items() if k in _ALWAYS or k in wanted or any(
        k.startswith(w) and k[len(w):len(w) + 1].isupper() for w in wanted)}
    meta = dict(kept.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    kept["meta"] = meta
    return kept


def _references(resource: Resource, element: str) -> list[str]:
    value = resource.get(element)
    items = value if isinstance(value, list) else [value] if value else []
    return [str(i["reference"]) for i in items if isinstance(i, dict) and i.get("reference")]


def _included(matches: list[Resource], pool: Iterable[Resource], shape: Shape) -> list[Resource]:
    if not shape.include and not shape.revinclude:
        return []
    resources = list(pool)
    by_key = {f"{r.get('resourceType')}/{r.get('id')}": r for r in resources}
    seen = {f"{r.get('resourceType')}/{r.get('id')}" for r in matches}
    out: list[Resource] = []

    def add(key: str) -> None:
        if key not in seen and key in by_key:
            seen.add(key)
            out.append(by_key[key])

    for match in matches:
        kind = str(match.get("resourceType"))
        for spec in shape.include:
            for element in INCLUDES[kind][spec]:
                for reference in _references(match, element):
                    add(reference)
        for spec in shape.revinclude:
            source, element = REVINCLUDES[kind][spec]
            target = f"{kind}/{match.get('id')}"
            for resource in resources:
                if resource.get("resourceType") == source and \
                        target in _references(resource, element):
                    add(f"{source}/{resource.get('id')}")
    return out


def _ignored_outcome(names: Sequence[str]) -> Resource:
    return {"resourceType": "OperationOutcome", "issue": [
        {"severity": "warning", "code": "not-supported", "expression": [name],
         "diagnostics": f"search parameter {name!r} is not supported here and was ignored "
                        "(Prefer: handling=lenient)"} for name in names]}
