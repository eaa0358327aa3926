"""Bundle entries as requests: methods, processing order, identity and the ids they get."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from fhir_adapter.errors import (
    ConflictError,
    Issue,
    PreconditionFailed,
    ReferenceError_,
    UnusableInput,
    Where,
)
from fhir_adapter.fhir import ConditionalReference, parse_conditional
from fhir_adapter.scope import ENROLLMENT_TYPES, PROCESSING_ORDER, STORED_TYPES
from fhir_adapter.store import (
    StoredResource,
    Unit,
    describe_key,
    identity_keys,
    is_identifier_key,
    names_identifier,
    sender_id_key,
)

__all__ = [
    "UNSUPPORTED_METHODS",
    "Request",
    "check_overlaps",
    "conditional_matches",
    "plan",
    "processing_order",
    "request_keys",
    "resolve_conditional",
    "stable_targets",
    "refuse_unsupported",
    "targets_of",
    "unsupported_entries",
]

#: Entry methods this server does not carry out: it keeps what hospitals send, and deletes,
#: patches and reads nothing of theirs (reads see only the published results).
UNSUPPORTED_METHODS = frozenset({"DELETE", "GET", "HEAD", "PATCH"})
#: FHIR transaction processing order of the methods.
_METHOD_RANK = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_TYPE_RANK = {name: rank for rank, name in enumerate(PROCESSING_ORDER)}


@dataclass(slots=True)
class Request:
    """One entry to process and what preparation found out about it."""

    index: int
    method: str
    resource_type: str
    resource: dict[str, Any] | None
    full_url: str | None = None
    url: str | None = None
    if_none_exist: str | None = None
    keys: list[str] = field(default_factory=list)
    id: str = ""
    existing: StoredResource | None = None
    matched: StoredResource | None = None  # ifNoneExist found this one: nothing to do
    validated: bool = False  # a bulk worker found no error in it (never for a Patient)
    keyed_for: str | None = None  # the sender ``keys`` were made for (made once)
    #: what the validation of the whole Bundle found in this entry (None: not validated yet)
    issues: list[Issue] | None = None
    by_id: bool = False  # PUT [type]/[id] of a single resource: kept under that very id
    if_match: str | None = None  # the ETag the client last saw (If-Match)

    @property
    def key(self) -> str:
        return f"{self.resource_type}/{self.id}"

    def where(self, file: str | None, element: str | None = None) -> Where:
        return Where(file, self.index, element)




def unsupported_entries(bundle: dict[str, Any]) -> list[Issue]:
    """One issue per entry whose method is unsupported, every one of them: a transaction that
    holds any is refused as a whole, before scopes are weighed (no scope could make it work)."""
    issues = []
    entries = bundle.get("entry")
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        given = entry.get("request") if isinstance(entry, dict) else None
        request: dict[str, Any] = given if isinstance(given, dict) else {}
        method = str(request.get("method") or "").upper()
        url = str(request.get("url") or "")
        if method in UNSUPPORTED_METHODS:
            text = (f"entry {i}: {method} {url} is not supported: this server creates and "
                    "updates only (POST, PUT)")
            issues.append(Issue("error", "not-supported", f"Bundle.entry[{i}].request.method",
                                text))
        elif "$" in url.split("?", 1)[0]:
            text = f"entry {i}: {method} {url}: operations are not supported in a Bundle"
            issues.append(Issue("error", "not-supported", f"Bundle.entry[{i}].request.url",
                                text))
    return issues


def refuse_unsupported(bundle: dict[str, Any], source: str | None = None) -> None:
    """UnusableInput listing every unsupported entry of a transaction, if it has any."""
    unsupported = unsupported_entries(bundle)
    if unsupported:
        raise UnusableInput(
            f"{len(unsupported)} entries of the transaction have a method this server does "
            "not support; nothing was processed", issues=unsupported,
            where=Where(source, None, "Bundle.entry.request.method"))


def processing_order(requests: list[Request]) -> list[Request]:
    """Enrollment entries first; then DELETE, POST, PUT, GET; patients before their data."""
    return sorted(requests, key=lambda r: (
        r.resource_type not in ENROLLMENT_TYPES, _METHOD_RANK.get(r.method, 9),
        _TYPE_RANK.get(r.resource_type, 9), r.index))


def request_keys(request: Request, sender: str) -> list[str]:
    """The identity keys of the request's resource, strongest first, and for a PUT by id the
    sender's key of that id; made once per request and sender."""
    if request.resource is None:
        return []
    if request.keyed_for != sender:
        keys = identity_keys(request.resource, sender=sender, full_url=request.full_url)
        url = request.url or ""
        if request.method == "PUT" and "/" in url and "?" not in url:
            rid = url.rstrip("/").rsplit("/", 1)[-1]
            key = sender_id_key(request.resource_type, sender, rid)
            if key not in keys:  # a key given twice would clash with itself when stored
                keys.append(key)
        request.keys, request.keyed_for = keys, sender
    return request.keys


def plan(unit: Unit, request: Request, *, sender: str, file: str | None) -> None:
    """Fill in the identity keys, the stored resource it names and the adapter id it gets."""
    if request.resource is None:
        return
    request_keys(request, sender)
    url = request.url or ""
    if request.method == "PUT" and "?" in url:
        found = _one_or_none(unit, _conditional(url, request, file), request, file)
        request.existing = found
    elif request.method == "PUT" and "/" in url and request.by_id:
        _plan_by_id(unit, request, url.rstrip("/").rsplit("/", 1)[-1], file)
    if request.method == "POST" and request.if_none_exist:
        query = f"{request.resource_type}?{request.if_none_exist}"
        request.matched = _one_or_none(unit, _conditional(query, request, file), request, file)
    if request.existing is None and not request.by_id:
        request.existing = unit.find(request.keys)
    if not request.by_id:
        request.id = request.existing.id if request.existing else (request.id or uuid.uuid4().hex)
    if request.if_match is not None:
        _check_version(request, file)


def _plan_by_id(unit: Unit, request: Request, rid: str, file: str | None) -> None:
    """INTERFACES.md, PUT by id: the resource is the one stored under ``rid`` (or is created
    under it); an identity that already names another stored resource is refused, naming both."""
    kind = request.resource_type
    request.id = rid
    request.existing = unit.get_by_id(rid)
    if request.existing is not None and request.existing.type != kind:
        raise ConflictError(
            f"id {rid!r} is already that of {request.existing.key}: PUT {kind}/{rid} cannot "
            f"create a {kind} under it", where=request.where(file, f"{kind}.id"))
    for key, owner in unit.owners(request.keys).items():
        if owner != rid:
            raise ConflictError(
                f"PUT {kind}/{rid}: its {describe_key(key)} already belongs to {kind}/{owner}"
                f"{'' if names_identifier(key) else ' (sent before without this id in the URL)'}"
                f"; a resource is kept once: update {kind}/{owner}, or send another identity",
                where=request.where(file, f"{kind}.identifier" if names_identifier(key)
                                    else f"{kind}.id"))


def _check_version(request: Request, file: str | None) -> None:
    """If-Match (FHIR http.html, "Managing Resource Contention"): the update applies only to
    the version the client names; another one, or no stored resource, is 412."""
    assert request.if_match is not None
    wanted = request.if_match.strip()
    current = request.existing
    if current is not None and wanted in (f'W/"{current.version}"', f'"{current.version}"'):
        return
    held = f'version {current.version}' if current is not None else "no stored version"
    element = "If-Match" if request.by_id else f"Bundle.entry[{request.index}].request.ifMatch"
    raise PreconditionFailed(
        f"If-Match {wanted} does not match {request.resource_type}/{request.id} ({held})",
        where=request.where(file, element))


def check_overlaps(requests: list[Request], file: str | None) -> None:
    """FHIR transaction rule: entries whose identities overlap fail the transaction (the
    later entry, in request order, is named). Only the types the adapter keeps count: what it
    never stores cannot clash (Synthea's claims share a placeholder identifier)."""
    seen: dict[str, int] = {}
    for request in sorted(requests, key=lambda r: r.index):
        if request.resource is None or request.matched is not None or \
                request.resource_type not in STORED_TYPES:
            continue
        names = [*request.keys, *([f"@{request.key}"] if request.existing else [])]
        for name in names:
            first = seen.setdefault(name, request.index)
            if first != request.index:
                raise ConflictError(
                    f"entries {first} and {request.index} name the same {request.resource_type} "
                    f"({describe_key(name)}): a transaction may hold a resource once",
                    where=request.where(file, f"{request.resource_type}.identifier"
                                        if names_identifier(name) else None))


def _conditional(text: str, request: Request, file: str | None) -> ConditionalReference:
    try:
        parsed = parse_conditional(text)
    except UnusableInput as exc:
        raise exc.located(file=file, entry=request.index, element="Bundle.entry.request") from None
    if parsed is None or parsed.identifier is None:
        raise UnusableInput(
            f"{text!r}: only a search by identifier is supported",
            where=request.where(file, "Bundle.entry.request"),
        )
    return parsed


def _one_or_none(
    unit: Unit, query: ConditionalReference, request: Request, file: str | None
) -> StoredResource | None:
    ids = conditional_matches(unit, query, {})
    if len(ids) > 1:
        raise PreconditionFailed(f"{query.text} matches {len(ids)} resources",
                                 where=request.where(file, "Bundle.entry.request"))
    return unit.get_by_id(ids[0].split("/", 1)[1]) if ids else None


def conditional_matches(
    unit: Unit, query: ConditionalReference, in_bundle: dict[str, str]
) -> list[str]:
    """Keys (``Type/id``) of the resources, stored or in the Bundle, matching ``query``."""
    assert query.identifier is not None
    system, value = query.identifier
    found = {f"{query.resource_type}/{i}"
             for i in unit.search_identifier(query.resource_type, system, value)}
    for key, target in in_bundle.items():
        if is_identifier_key(key, query.resource_type, system, value):
            found.add(target)
    return sorted(found)


def resolve_conditional(
    unit: Unit, query: ConditionalReference, in_bundle: dict[str, str]
) -> str:
    """The one resource a conditional reference names; none or several fail."""
    if query.identifier is None:
        raise UnusableInput(f"{query.text}: only a search by identifier is supported")
    matches = conditional_matches(unit, query, in_bundle)
    if not matches:
        raise ReferenceError_(f"{query.text} matches no resource")
    if len(matches) > 1:
        raise PreconditionFailed(f"{query.text} matches {len(matches)} resources")
    return matches[0]


def stable_targets(requests: list[Request]) -> dict[str, str]:
    """fullUrl -> the strongest identity key of its entry: references that do not change when
    a sender mints new ``urn:uuid`` fullUrls for the same resources (for content hashes)."""
    return {r.full_url: (r.keys[0] if r.keys else r.key)
            for r in requests if r.full_url and r.resource is not None}


def targets_of(requests: list[Request]) -> tuple[dict[str, str], dict[str, str]]:
    """(fullUrl or ``Type/hospital id`` -> ``Type/adapter id``, identity key -> ``Type/id``)."""
    targets: dict[str, str] = {}
    keys: dict[str, str] = {}
    for r in requests:
        if r.resource is None:
            continue
        if r.full_url:
            targets[r.full_url] = r.key
            if not r.full_url.startswith("urn:"):
                targets["/".join(r.full_url.rstrip("/").split("/")[-2:])] = r.key
        if r.resource.get("id"):
            targets.setdefault(f"{r.resource_type}/{r.resource['id']}", r.key)
        for k in r.keys:
            keys.setdefault(k, r.key)
    return targets, keys
