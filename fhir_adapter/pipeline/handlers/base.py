"""What every handler uses: the Context of a batch, keeping a resource, the enrollment gate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir_adapter.errors import Forbidden, Issue, ReferenceError_
from fhir_adapter.fhir import informational, rewrite_references
from fhir_adapter.mapping import Mapper
from fhir_adapter.pipeline.outcomes import EntryOutcome
from fhir_adapter.pipeline.requests import Request
from fhir_adapter.store import (
    ParticipantRow,
    SaveOutcome,
    Unit,
    content_hash,
    identifier_key,
    sender_id_key,
)
from fhir_adapter.store.tokens import Principal
from fhir_adapter.trial.definitions import StudyDefinition

__all__ = [
    "Context",
    "Handler",
    "gate",
    "not_kept",
    "out_of_scope",
    "patient_key",
    "representation",
    "save",
]


@dataclass(slots=True)
class Context:
    """What a handler may use: the unit of work, the sender, the Bundle's ids, the mapper."""

    unit: Unit
    sender: str
    file: str | None
    mapper: Mapper
    study: StudyDefinition
    targets: dict[str, str] = field(default_factory=dict)
    bundle_keys: dict[str, str] = field(default_factory=dict)
    stable: dict[str, str] = field(default_factory=dict)
    #: a literal reference to a Patient this server does not hold is an error (Bundles and
    #: REST requests, FHIR transaction rules); NDJSON lines are each answered "not kept"
    dangling_is_error: bool = True
    #: who writes, when a token does (None: the command line, which may do everything): a
    #: write needs the scope of what it does, create or update, whatever its method
    principal: Principal | None = None
    #: ``Type/adapter id`` -> resource of every entry of the batch (a batch's or an export's
    #: entries are written one at a time: what a ResearchSubject names may come later)
    peers: dict[str, dict[str, Any]] = field(default_factory=dict)
    _local: set[str] | None = None  # the values of ``targets``, kept until they change

    def digest(self, request: Request) -> str:
        """The content hash: references to Bundle entries by those entries' identity."""
        assert request.resource is not None
        if not self.stable:  # nothing to rewrite (an NDJSON line, a lone resource)
            return content_hash(request.resource)
        return content_hash(rewrite_references(request.resource, self.stable))

    @property
    def local_keys(self) -> set[str]:
        if self._local is None:
            self._local = set(self.targets.values())
        return self._local

    def retarget(self, old: str, new: str) -> None:
        """Another writer created this entry's resource first (a race lost on the unique key):
        references to the entry now name that resource, not the id planned for it."""
        for mapping in (self.targets, self.bundle_keys):
            for name, key in mapping.items():
                if key == old:
                    mapping[name] = new
        self._local = None


Handler = Callable[[Context, Request, dict[str, Any]], EntryOutcome]


def not_kept(request: Request, reason: str, status: int = 200, *,
             detail: str = "") -> EntryOutcome:
    """Answered, not kept: ``reason`` is what summaries count, ``detail`` adds to the entry's
    OperationOutcome what only this entry has."""
    text = f"not kept: {reason}" + (f" ({detail})" if detail else "")
    return EntryOutcome(request.index, request.resource_type, "not-kept", status,
                        reason=reason, outcome=informational(text))


def save(ctx: Context, request: Request, resolved: dict[str, Any], subject: str | None,
         *, extra_keys: tuple[str, ...] = ()) -> tuple[EntryOutcome, SaveOutcome]:
    """Keep the resource as received; a new version only when its content changed."""
    assert request.resource is not None
    planned = request.key
    saved = ctx.unit.save(
        request.resource_type, [*request.keys, *extra_keys], request.resource,
        sender=ctx.sender, content_hash=ctx.digest(request), new_id=request.id,
        status=request.resource.get("status"), at_id=request.by_id,
    )
    _may(ctx, request, saved)
    request.id = saved.id
    if request.key != planned:
        ctx.retarget(planned, request.key)
    state = "created" if saved.created else "updated" if saved.changed else "unchanged"
    entry = EntryOutcome(
        request.index, request.resource_type, state, 201 if saved.created else 200,
        id=saved.id, version=saved.version, last_modified=saved.last_updated,
        resource=representation(resolved, saved.id, saved.version, saved.last_updated),
        subjects={subject} if subject and saved.changed else set(),
    )
    return entry, saved


def _may(ctx: Context, request: Request, saved: SaveOutcome) -> None:
    """403 when the write did what its token may not: a create needs ``c``, a new version of a
    stored resource ``u`` (SMART App Launch 2.2, scopes-and-launch-context.html: the scope
    names the interaction, and a POST whose identity names a stored resource is an update
    here). Raised inside the write's transaction, so nothing of it stays."""
    principal = ctx.principal
    action = "c" if saved.created else "u" if saved.changed else None
    kind = request.resource_type
    if principal is None or action is None or principal.allows(kind, action):
        return
    if action == "u":
        because = (f"this {request.method} names a stored {kind} (by its identifier, or its "
                   "id from this sender) and changes it, which makes a new version")
        element = f"{kind}.identifier"
    else:
        because = f"this {request.method} names no stored {kind}, so it creates one"
        element = kind
    text = principal.refusal(kind, action, because)
    raise Forbidden(text, issues=[Issue("error", "forbidden", element, text)],
                    where=request.where(ctx.file, element))


def representation(resolved: dict[str, Any], rid: str, version: int,
                   last_updated: datetime | None) -> dict[str, Any]:
    """The resource as the server holds it (FHIR http.html create/update): the adapter id,
    ``meta.versionId`` and ``meta.lastUpdated``, references rewritten to adapter ids."""
    meta = dict(resolved.get("meta") or {})
    meta["versionId"] = str(version)
    if last_updated is not None:
        meta["lastUpdated"] = last_updated.isoformat()
    rest = {k: v for k, v in resolved.items() if k not in ("resourceType", "id", "meta")}
    return {"resourceType": resolved.get("resourceType"), "id": rid, "meta": meta, **rest}


def patient_key(ctx: Context, reference: dict[str, Any] | None) -> str | None:
    """The adapter id of the Patient a (rewritten) Reference names, if it is known."""
    if not isinstance(reference, dict):
        return None
    text = reference.get("reference")
    if isinstance(text, str) and text:
        rtype, _, rid = "/".join(text.rstrip("/").split("/")[-2:]).partition("/")
        if rtype != "Patient":
            return None
        if f"Patient/{rid}" in ctx.local_keys:
            return rid
        found = ctx.unit.find([sender_id_key("Patient", ctx.sender, rid)]) or \
            ctx.unit.get("Patient", rid)
        return found.id if found else None
    ident = reference.get("identifier")
    if isinstance(ident, dict) and ident.get("value"):
        key = identifier_key("Patient", str(ident.get("system") or ""), str(ident["value"]))
        if key in ctx.bundle_keys:
            return ctx.bundle_keys[key].split("/", 1)[1]
        found = ctx.unit.find([key])
        return found.id if found else None
    return None


def gate(ctx: Context, request: Request, reference: Any) -> ParticipantRow | str:
    """The participant a resource is about (its ``subject``), or the reason it is not kept."""
    if not isinstance(reference, dict) or not (reference.get("reference")
                                               or reference.get("identifier")):
        return "no subject"
    pid = patient_key(ctx, reference)
    if pid is None and ctx.dangling_is_error and _literal_patient(reference):
        element = f"{request.resource_type}.subject"
        raise ReferenceError_(
            f"{element} {reference['reference']} names no resource this server holds (never "
            "sent, or a Patient not kept: not enrolled); send the Patient in the same Bundle, "
            "or refer to it by identifier", where=request.where(ctx.file, element))
    row = ctx.unit.participant_for_patient(pid) if pid else None
    if row is None:
        return "patient not enrolled"
    if row.status in ctx.study.stopped_statuses:
        return f"participant {row.status}"
    return row


def _literal_patient(reference: dict[str, Any]) -> bool:
    """A literal reference (``Patient/id`` or an absolute URL ending so), not a contained one."""
    text = reference.get("reference")
    if not isinstance(text, str) or text.startswith(("#", "urn:")):
        return False
    return "/".join(text.rstrip("/").split("/")[-2:]).startswith("Patient/")


def out_of_scope(ctx: Context, request: Request, resolved: dict[str, Any]) -> EntryOutcome:
    return not_kept(request, "type out of scope")
