"""One batch of requests written: check, identify, handle, after-change.

Every way in ends here: a transaction Bundle is one batch in one transaction; a batch or
collection Bundle is a batch per entry; a chunk of NDJSON lines is one transaction with a
savepoint per line. The steps are the same for each:

1. check     parse (base R4) and validate (the profile that applies), before the gate
2. identify  identity keys, the stored resource each names, the ids they get, overlaps
3. handle    references rewritten to adapter ids, then the handler of the resource type
4. after     the participants the batch changed: recomputed in the same transaction, or
             queued for the end of a bulk load
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from fhir_adapter.errors import (
    AdapterError,
    EntryFault,
    Issue,
    ProfileError,
    ReferenceError_,
    StructureError,
    UnusableInput,
    Where,
)
from fhir_adapter.fhir import (
    ConditionalReference,
    error_outcome,
    parse_resource,
    rewrite_references,
)
from fhir_adapter.mapping import Mapper
from fhir_adapter.pipeline import audit
from fhir_adapter.pipeline.handlers import Context, handle
from fhir_adapter.pipeline.outcomes import EntryOutcome
from fhir_adapter.pipeline.requests import (
    UNSUPPORTED_METHODS,
    Request,
    check_overlaps,
    plan,
    processing_order,
    request_keys,
    resolve_conditional,
    stable_targets,
    targets_of,
)
from fhir_adapter.pipeline.validating import enrolled_patients
from fhir_adapter.store import Store, Unit
from fhir_adapter.store.tokens import Principal
from fhir_adapter.validation import BASE_SD, BUNDLE_SOURCE, LOCAL_REFERENCE, Validator

__all__ = ["AfterChange", "Shared", "Writer", "keys_of", "peers_of"]

log = logging.getLogger("fhir_adapter.pipeline")

#: What follows a change, inside its transaction: the participants it touched, recomputed
#: (``after_change``) or queued for the end of a bulk load (``after_queue``).
AfterChange = Callable[[Unit, set[str]], object]
#: (fullUrl -> Type/adapter id, fullUrl -> identity key) of the other entries of a batch.
Shared = tuple[dict[str, str], dict[str, str]]


class Writer:
    """Writes batches of requests into the store; ``after_change`` recomputes what they touched."""

    def __init__(self, store: Store, mapper: Mapper, validator: Validator, *,
                 after_change: AfterChange, after_queue: AfterChange) -> None:
        self.store = store
        self.mapper = mapper
        self.validator = validator
        self.after_change = after_change
        self.after_queue = after_queue
        #: every participant a write of this writer changed (recomputed or queued)
        self.touched: set[str] = set()

    # -- whole batches -----------------------------------------------------------------------
    def transaction(self, requests: list[Request], sender: str, file: str | None,
                    shared: Shared | None = None, *,
                    action: str | None = None, deferred: bool = False,
                    principal: Principal | None = None,
                    peers: dict[str, dict[str, Any]] | None = None) -> list[EntryOutcome]:
        """All or nothing, in one database transaction (the first failing entry's error is
        raised); with ``action`` its audit row is written in it too; ``deferred``: the touched
        participants are queued for recomputation, not recomputed (a bulk load);
        ``principal``: the token writing, whose scopes each create and update needs;
        ``peers``: the resources of the other entries written with these (``peers_of``)."""
        enrolled = self.enrolled(requests, sender)
        for request in requests:
            self.check(request, file, request.index in enrolled)
        answers: dict[int, EntryOutcome] = {}
        with self.store.transaction() as unit:
            ctx = self.identify(unit, requests, sender, file, shared)
            ctx.principal = principal
            ctx.peers = {**(peers or {}), **peers_of(requests)}
            for request in processing_order(requests):
                answers[request.index] = self.handle(ctx, request)
            subjects = set().union(*(a.subjects for a in answers.values()))
            self.touched |= subjects
            (self.after_queue if deferred else self.after_change)(unit, subjects)
            if action is not None:
                audit.write(unit, sender, action, [answers[r.index] for r in requests],
                            200 if action == "transaction" else answers[requests[0].index].status)
        return [answers[r.index] for r in requests]

    def each(self, requests: list[Request], sender: str, file: str | None, *,
             principal: Principal | None = None) -> list[EntryOutcome]:
        """Each entry in its own transaction (a batch Bundle); fullUrls of the others still
        resolve. A refused entry is answered with its error; the others are kept."""
        shared: Shared = ({}, {})
        if len(requests) > 1:
            with self.store.read() as unit:
                for request in requests:
                    if request.resource is not None:
                        try:
                            plan(unit, request, sender=sender, file=file)
                        except AdapterError:
                            continue  # refused in its own transaction, with this reason
            shared = (targets_of(requests)[0], stable_targets(requests))
        peers = peers_of(requests)
        answers: dict[int, EntryOutcome] = {}
        for request in processing_order(requests):
            try:
                answers[request.index] = self.transaction([request], sender, file, shared,
                                                          principal=principal, peers=peers)[0]
                shared[0].update(targets_of([request])[0])  # the id it got, if a race moved it
            except AdapterError as exc:
                exc.located(file=file, entry=request.index)
                answers[request.index] = _refused(request, exc)
            except Exception:  # a fault of the adapter: this entry's alone, rolled back
                log.exception("entry %s of a batch failed on a fault of the adapter",
                              request.index)
                fault = EntryFault("this entry failed on a fault of the adapter; it was not "
                                   "kept, and the fault has been logged",
                                   where=request.where(file))
                answers[request.index] = _refused(request, fault)
        return [answers[r.index] for r in requests]

    def lines(self, unit: Unit, requests: list[Request], sender: str,
              file: str) -> list[EntryOutcome]:
        """NDJSON lines in ``unit``, each refused or kept alone (a savepoint per line); the
        participants they touched are queued for recomputation in the same transaction."""
        unit.prefetch(keys_of(requests, sender))
        done: list[EntryOutcome] = []
        for request in requests:
            entry = self._line(unit, request, sender, file)
            entry.resource = None  # answered: only its counts and key are kept
            done.append(entry)
        subjects = set().union(*(entry.subjects for entry in done))
        self.touched |= subjects
        self.after_queue(unit, subjects)
        return done

    def _line(self, unit: Unit, request: Request, sender: str, file: str) -> EntryOutcome:
        try:
            if not request.validated:
                enrolled = request.resource_type == "Patient" and bool(
                    enrolled_patients(unit, [request], self.mapper, sender))
                self.check(request, file, enrolled)
            with unit.savepoint():  # what a refused line wrote goes, the others' stays
                ctx = self.identify(unit, [request], sender, file)
                ctx.dangling_is_error = False  # a line's Patient may be one not kept
                return self.handle(ctx, request)
        except AdapterError as exc:
            # an NDJSON line by its number (from 1); a lone resource (index 0) by its file alone
            exc.where = replace(exc.where, file=file, line=request.index or None, entry=None)
            return _refused(request, exc)

    # -- the steps -----------------------------------------------------------------------------
    def enrolled(self, requests: list[Request], sender: str | None) -> set[int]:
        """Indices of the Patient requests of an enrolled participant (read before writing)."""
        if not any(r.resource_type == "Patient" for r in requests):
            return set()
        with self.store.read() as unit:
            return enrolled_patients(unit, requests, self.mapper, sender)

    def check(self, request: Request, file: str | None, enrolled: bool = False) -> None:
        """Parse (base R4), then validate (profiles): an invalid resource is refused first,
        before the enrollment gate; ``enrolled``: the Patient of a participant (trial-patient).

        The validator's first layer is the base R4 parse, so a valid resource is parsed once;
        a refused one is parsed again on its own, so that a structural problem is answered as
        such (StructureError), before the profiles."""
        if request.method in UNSUPPORTED_METHODS:
            raise UnusableInput(f"{request.method} entries are not supported",
                                where=request.where(file, "Bundle.entry.request.method"))
        if request.resource is None:
            raise UnusableInput("the entry has no resource", where=request.where(file))
        try:
            issues = request.issues if request.issues is not None else \
                self.validator.validate(request.resource, enrolled=enrolled)
        except Exception:
            self._parse(request, file)
            raise
        errors = [i for i in issues if i.severity in ("error", "fatal")]
        if errors:
            # not base R4 in its structure (unknown element, wrong JSON type): 400, named
            # first; a rule of base R4 or of a profile that the structure keeps: 422
            structural = [i for i in errors if i.code == "structure" and _is_base(i)]
            first = (structural or errors)[0]
            kind = StructureError if structural else ProfileError
            raise kind(first.described(), issues=structural + [
                i for i in errors if i not in structural],
                where=request.where(file, first.expression))

    def check_bundle(self, bundle: dict[str, Any], requests: list[Request], sender: str,
                     file: str | None) -> None:
        """The validation ``$validate`` and ``fhir-adapter validate`` run, of the whole Bundle:
        its own problems (bdl-3, bdl-7, a local reference to no entry) refuse it (400); each
        entry's are kept with its request, rooted at its resource, for ``check``."""
        enrolled = self.enrolled(requests, sender)
        kinds = {r.index: r.resource_type or "Resource" for r in requests}
        found: dict[int, list[Issue]] = {r.index: [] for r in requests}
        own: list[Issue] = []
        for index, issue in self.validator.check(bundle, enrolled=enrolled):
            if issue.source == BUNDLE_SOURCE or index not in found:
                if issue.severity in ("error", "fatal"):
                    own.append(issue)
            else:
                found[index].append(_rooted(issue, index, kinds[index]))
        if own:
            first = own[0]
            entry = _entry_index(first.expression)
            if all(i.rule == LOCAL_REFERENCE for i in own) and entry in kinds:
                rooted = _rooted(first, entry, kinds[entry])  # as the resource says it
                raise ReferenceError_(first.described(), issues=own,
                                      where=Where(file, entry, rooted.expression))
            raise StructureError(first.described(), issues=own,
                                 where=Where(file, entry, first.expression))
        for request in requests:
            request.issues = found[request.index]

    def _parse(self, request: Request, file: str | None) -> None:
        """Base R4 structure (StructureError listing every problem)."""
        assert request.resource is not None
        try:
            parse_resource(request.resource, base=request.resource_type or "Resource",
                           where=request.where(file))
        except AdapterError as exc:
            raise exc.located(file=file, entry=request.index) from None

    def identify(self, unit: Unit, requests: list[Request], sender: str, file: str | None,
                 shared: Shared | None = None) -> Context:
        """Keys, stored resources and ids of the batch (one look-up for all of it), checked
        for overlaps; the Context its handlers share."""
        others = shared or ({}, {})
        unit.prefetch(keys_of(requests, sender))
        for request in requests:
            plan(unit, request, sender=sender, file=file)
        check_overlaps(requests, file)
        targets, keys = targets_of(requests)
        return Context(unit, sender, file, self.mapper, self.mapper.study,
                       {**others[0], **targets}, keys,
                       {**others[1], **stable_targets(requests)})

    def handle(self, ctx: Context, request: Request) -> EntryOutcome:
        """References rewritten to adapter ids (conditional ones resolved), then the handler."""
        assert request.resource is not None
        if request.matched is not None:  # ifNoneExist found it: nothing to do
            m = request.matched
            return EntryOutcome(request.index, request.resource_type, "unchanged", 200, id=m.id,
                                version=m.version, last_modified=m.last_updated)
        try:
            resolved = rewrite_references(
                request.resource, ctx.targets, base=request.resource_type,
                where=request.where(ctx.file),
                conditional=lambda q: _conditional(ctx, q))
            return handle(ctx, request, resolved)
        except AdapterError as exc:
            raise exc.located(file=ctx.file, entry=request.index) from None


def _rooted(issue: Issue, index: int, kind: str) -> Issue:
    """The issue with its path from the resource (``Observation.x``), as a lone one has it."""
    root = f"Bundle.entry[{index}].resource"
    expression = issue.expression or ""
    if expression == root or expression.startswith(root + "."):
        return replace(issue, expression=kind + expression[len(root):])
    return issue


def _is_base(issue: Issue) -> bool:
    return (issue.source or "").startswith(BASE_SD)


def _entry_index(expression: str | None) -> int | None:
    if expression and expression.startswith("Bundle.entry["):
        return int(expression[len("Bundle.entry["):expression.index("]")])
    return None


def _conditional(ctx: Context, query: ConditionalReference) -> str:
    if query.resource_type == "ResearchStudy":
        return query.text  # the study is named, not stored: the mapper checks it
    return resolve_conditional(ctx.unit, query, ctx.bundle_keys)


def _refused(request: Request, exc: AdapterError) -> EntryOutcome:
    return EntryOutcome(request.index, request.resource_type, "error", exc.http_status,
                        error=exc, outcome=error_outcome(exc))


def peers_of(requests: Iterable[Request]) -> dict[str, dict[str, Any]]:
    """``Type/adapter id`` -> resource of each planned request (what ``Context.peers`` holds)."""
    return {r.key: r.resource for r in requests if r.id and isinstance(r.resource, dict)}


def keys_of(requests: Iterable[Request], sender: str) -> list[str]:
    """The identity keys of these requests' resources (what is not a resource is skipped:
    it is refused later, with its reason)."""
    keys: list[str] = []
    for request in requests:
        if isinstance(request.resource, dict):
            try:
                keys += request_keys(request, sender)
            except (AttributeError, TypeError, ValueError):
                continue
    return keys
