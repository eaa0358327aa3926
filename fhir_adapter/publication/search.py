"""Read and search the published (pseudonymised) result resources, as a FHIR server would.

A read or search looks in the part of the result Bundle that can answer it: no result for the
types made of the study and its participants, the named participants' results for Observations
asked by ``subject`` or ``_id``, else the whole Bundle."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fhir_adapter.errors import NotFound, UnusableInput, Where
from fhir_adapter.fhir.primitives import parse_datetime
from fhir_adapter.publication.bundles import ResultBundles
from fhir_adapter.publication.pseudonyms import PseudonymKey
from fhir_adapter.results import Pseudonymiser, result_id
from fhir_adapter.results.study import subject_ids
from fhir_adapter.scope import PARAMETER_TYPES, RESULT_SEARCH_PARAMS
from fhir_adapter.store import Store

__all__ = ["SEARCH_PARAMETERS", "WITHOUT_RESULTS", "ResultSearch", "date_range",
           "effective_range", "read_among", "search_among", "unknown_parameters"]

#: The search parameters results answer to (RESULTS.md "Pulling"), plus ``_id``.
SEARCH_PARAMETERS = tuple(RESULT_SEARCH_PARAMS)
_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le")
Resource = dict[str, Any]
#: Published types made of the study, its participants and the summary alone.
WITHOUT_RESULTS = frozenset({"ResearchStudy", "PlanDefinition", "Patient", "ResearchSubject",
                             "MeasureReport"})


class ResultSearch:
    """Reads and searches over the result Bundles (each resource as the whole Bundle has it)."""

    def __init__(self, store: Store, key: PseudonymKey, bundles: ResultBundles) -> None:
        self.store = store
        self.key = key
        self.bundles = bundles

    def read(self, resource_type: str, id: str) -> Resource:
        return read_among(self._published(resource_type, {"_id": [id]}), resource_type, id)

    def search(self, resource_type: str, params: Mapping[str, Sequence[str]]) -> list[Resource]:
        return search_among(self._published(resource_type, params), resource_type, params)

    def search_in_pool(self, resource_type: str, params: Mapping[str, Sequence[str]], *,
                       everything: bool = False) -> tuple[list[Resource], list[Resource]]:
        """(the matches, the published resources they were found among: what ``_include``
        can reach); ``everything``: among the whole result Bundle (``_revinclude``)."""
        pool = self._published("*" if everything else resource_type, params)
        return search_among(pool, resource_type, params), pool

    def _published(self, resource_type: str,
                   params: Mapping[str, Sequence[str]]) -> list[Resource]:
        if resource_type in WITHOUT_RESULTS:
            bundle = self.bundles.without_results()
        else:
            subjects = self.subjects_named(resource_type, params)
            bundle = self.bundles.whole() if subjects is None else \
                self.bundles.for_subjects(subjects)
        return [e["resource"] for e in bundle.get("entry", [])]

    def subjects_named(self, resource_type: str,
                       params: Mapping[str, Sequence[str]]) -> list[str] | None:
        """The participants whose published resources can answer this read or search of
        Observations (``_id`` or ``subject``), or None when every one can."""
        if resource_type != "Observation":
            return None
        named = params.get("subject") or params.get("patient")
        if named:
            wanted = {part for v in named for part in v.split(",") if part}
            with self.store.read() as unit:
                people = unit.participants()
            return sorted(p.subject for p in people if _names(wanted, subject_ids(p.subject)[0]))
        if "_id" in params:
            ids = {part for v in params["_id"] for part in v.split(",") if part}
            return self._owners_of(ids)
        return None

    def _owners_of(self, ids: set[str]) -> list[str]:
        """The participants of the published Observations with these ids: results (ids made
        from their keys) and sources (pseudonymous ids of the stored ones); no resource is
        read."""
        pseudonyms = Pseudonymiser(self.key.for_reading())
        with self.store.read() as unit:
            found = {result_id(key, kind): subject for key, kind, subject in unit.result_owners()}
            owners = {found[i] for i in ids if i in found}
            wanted = {f"Observation/{i}" for i in ids if i not in found}
            if wanted:  # not all of them results: sources
                owners |= {subject for rid, subject in unit.measurement_owners()
                           if pseudonyms.reference(f"Observation/{rid}") in wanted}
        return sorted(owners)


def _names(wanted: set[str], patient: str) -> bool:
    """Whether a ``subject`` search value names this pseudonymous Patient (``Patient/id`` or
    the bare id), as the search itself matches it."""
    return f"Patient/{patient}" in wanted or patient in wanted


def read_among(resources: Iterable[Resource], resource_type: str, id: str) -> Resource:
    for resource in resources:
        if resource.get("resourceType") == resource_type and resource.get("id") == id:
            return resource
    raise NotFound(f"{resource_type}/{id} is not a published result",
                   where=Where(element=resource_type))


def search_among(resources: Iterable[Resource], resource_type: str,
           params: Mapping[str, Sequence[str]]) -> list[Resource]:
    """The resources of ``resource_type`` matching every parameter (several values of one
    parameter, comma-separated or repeated: any of them)."""
    tests: list[Callable[[Resource], bool]] = []
    unknown = unknown_parameters(resource_type, params)
    if unknown:
        name = unknown[0]
        raise UnusableInput(
            f"unknown search parameter {name!r} for {resource_type} (supported: "
            f"{', '.join(_applying(resource_type))})", where=Where(element=name))
    for name, values in params.items():
        if name == "_lastUpdated":  # repeated: all must hold (a range)
            tests += [_last_updated(v) for v in values]
            continue
        if name == "date":
            tests += [_dated(v) for v in values]
            continue
        wanted = [part for v in values for part in v.split(",") if part]
        tests.append(_ANY[name](wanted))
    return [r for r in resources
            if r.get("resourceType") == resource_type and all(t(r) for t in tests)]


def _applying(resource_type: str) -> list[str]:
    return [n for n in SEARCH_PARAMETERS
            if (types := PARAMETER_TYPES[n]) is None or resource_type in types]


def unknown_parameters(resource_type: str, params: Mapping[str, Sequence[str]]) -> list[str]:
    """The names in ``params`` that are no search parameter of ``resource_type``."""
    known = set(_applying(resource_type))
    return [name for name in params if name not in known]


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


def _by_patient(wanted: list[str]) -> Callable[[Resource], bool]:
    """``patient``: the subject when it is a Patient (FHIR: a bare id names Patient/id)."""
    return _by_subject([w if "/" in w else f"Patient/{w}" for w in wanted])


def _by_category(wanted: list[str]) -> Callable[[Resource], bool]:
    return lambda r: _token_match(
        [c for concept in r.get("category") or [] for c in concept.get("coding") or []],
        wanted, "code")


def _by_status(wanted: list[str]) -> Callable[[Resource], bool]:
    return lambda r: str(r.get("status", "")) in wanted


_ANY: dict[str, Callable[[list[str]], Callable[[Resource], bool]]] = {
    "_id": _by_id, "identifier": _by_identifier, "code": _by_code, "subject": _by_subject,
    "patient": _by_patient, "category": _by_category, "status": _by_status,
}


def effective_range(resource: Resource) -> tuple[datetime, datetime] | None:
    """The time an Observation is about (effective[x]), a MeasureReport its ``date``, as a
    half-open range: a day-precise date is that whole day."""
    period = resource.get("effectivePeriod")
    if isinstance(period, dict) and period.get("start"):
        low = date_range("date", str(period["start"]))[0]
        high = date_range("date", str(period["end"]))[1] if period.get("end") else \
            datetime.max.replace(tzinfo=UTC)
        return low, high
    for name in ("effectiveDateTime", "effectiveInstant", "date"):
        if isinstance(resource.get(name), str):
            return date_range("date", resource[name])
    return None


def _dated(text: str) -> Callable[[Resource], bool]:
    """A ``date`` test (FHIR search, "date": the target's range against the value's range):
    eq contains it, gt/lt reach beyond it, ge/le are gt/lt or eq, ne is not eq."""
    prefix = text[:2] if text[:2] in _PREFIXES else "eq"
    low, high = date_range("date", text[2:] if text[:2] in _PREFIXES else text)

    def test(resource: Resource) -> bool:
        span = effective_range(resource)
        if span is None:
            return False
        start, end = span
        inside = low <= start and end <= high
        return {
            "eq": inside, "ne": not inside, "gt": end > high, "lt": start < low,
            "ge": end > high or inside, "le": start < low or inside,
        }[prefix]
    return test


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
    return date_range("_lastUpdated", raw)


def date_range(name: str, raw: str) -> tuple[datetime, datetime]:
    """The half-open range of instants a FHIR date, dateTime or instant names (UTC for a date
    without a time); 400 naming the parameter ``name`` when it is none."""
    try:
        parsed = parse_datetime(raw)
    except ValueError as exc:
        raise UnusableInput(f"{name}: {exc}", where=Where(element=name)) from None
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
