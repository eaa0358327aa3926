"""The Pipeline: every way in (files, Bundles, single resources) goes through these steps."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from fhir_adapter.errors import (
    AdapterError,
    NotFhir,
    ProfileError,
    UnusableInput,
    Where,
)
from fhir_adapter.fhir import (
    BundleEntry,
    ConditionalReference,
    InputFile,
    bundle_entries,
    error_outcome,
    loads,
    ndjson_lines,
    parse_resource,
    read_path,
    rewrite_references,
)
from fhir_adapter.mapping import Mapper
from fhir_adapter.pipeline import audit, parallel, refusals
from fhir_adapter.pipeline.bulk import ingest_lines, keys_of
from fhir_adapter.pipeline.handlers import Context, handle
from fhir_adapter.pipeline.outcomes import BundleOutcome, EntryOutcome, LoadSummary
from fhir_adapter.pipeline.parallel import Prevalidator, worker_count
from fhir_adapter.pipeline.requests import (
    Request,
    check_overlaps,
    plan,
    processing_order,
    resolve_conditional,
    stable_targets,
    targets_of,
)
from fhir_adapter.pipeline.results_access import ResultsAccess  # results side
from fhir_adapter.pipeline.results_flow import configured_key  # results side
from fhir_adapter.pipeline.validating import (
    check_document,
    enrolled_patients,
    load_mapper,
    make_validator,
    requests_of,
    validation_outcome,
)
from fhir_adapter.settings import Settings
from fhir_adapter.store import Store, Unit
from fhir_adapter.trial.definitions import StudyDefinition
from fhir_adapter.trial.model import ParticipantRecord
from fhir_adapter.validation import Validator

__all__ = ["Pipeline"]

Clock = Callable[[], datetime]
Progress = Callable[[Path], None]
#: (fullUrl -> Type/adapter id, fullUrl -> identity key) of the other entries of a batch.
Shared = tuple[dict[str, str], dict[str, str]]
_PER_ENTRY = frozenset({"batch", "collection"})


class Pipeline(ResultsAccess):
    """Parse, validate, enrollment gate, map, persist; then recompute the touched participants."""

    def __init__(self, store: Store, mapper: Mapper, study: StudyDefinition,
                 validator: Validator) -> None:
        self.store = store
        self.mapper = mapper
        self.study = study
        self.validator = validator
        self.touched: set[str] = set()
        #: what the pipeline was built from (None when built by hand): bulk workers rebuild
        #: the same validator from it
        self.settings: Settings | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> Pipeline:
        mapper = load_mapper(settings)
        store = Store.open(settings.db_url(), clock=clock)
        pipeline = cls(store, mapper, mapper.study, make_validator(mapper))
        pipeline.settings = settings
        pipeline.pseudonym_key = configured_key(settings)  # results side
        pipeline.recompute_stale()  # what a load that stopped left queued
        return pipeline

    # -- ways in -------------------------------------------------------------------------------
    def ingest_paths(self, paths: Iterable[Path | str], *, sender: str = "cli",
                     progress: Progress | None = None) -> LoadSummary:
        """Load every Bundle, resource or NDJSON file (directories walked, sorted).

        The participants whose data came in NDJSON lines or lone resources are recomputed
        once each, at the end (queued in the store meanwhile: a load that stops leaves its
        queue, which opening a pipeline on the store, or the end of the next load, takes up)."""
        summary = LoadSummary()
        try:
            self._ingest_paths(paths, sender, progress, summary)
        finally:
            self.recompute_stale()
        return summary

    def _ingest_paths(self, paths: Iterable[Path | str], sender: str,
                      progress: Progress | None, summary: LoadSummary) -> None:
        for path, walked in expand_inputs(paths):
            summary.files += 1
            try:
                self._ingest_file(path, sender, summary)
            except NotFhir as exc:
                if walked and exc.where.line is None:  # a folder's stray JSON: left, said so
                    summary.files -= 1
                    summary.skipped.append(exc.located(file=str(path)))
                else:
                    summary.add_error(exc.located(file=str(path)))
            except AdapterError as exc:
                summary.add_error(exc.located(file=str(path)))
            if progress is not None:
                progress(path)

    def process_bundle(self, bundle: dict[str, Any], *, sender: str, source: str = "request",
                       prefer: str = "representation") -> BundleOutcome:
        """A transaction (all or nothing: raises the first failing entry's error), or a batch
        or collection (each entry alone). Entries are answered in request order."""
        kind = bundle.get("type")
        action = str(kind or "bundle")
        requests: list[Request] = []
        try:
            if kind not in ("transaction", *_PER_ENTRY):
                raise UnusableInput(f"Bundle.type {kind!r} cannot be processed",
                                    where=Where(source, None, "Bundle.type"))
            requests = list(_requests(bundle_entries(bundle, file=source)))
            if kind == "transaction":
                entries = self._transaction(requests, sender, source, action=action)
            else:
                entries = self._each(requests, sender, source)
                failed: dict[int, AdapterError | None] = {
                    e.index: e.error for e in entries if e.error is not None}
                audit.record(self.store, sender, action, entries,
                             refused=self._refusals(requests, failed, sender))
        except AdapterError as exc:
            at: dict[int, AdapterError | None] = \
                {} if exc.where.entry is None else {exc.where.entry: exc}
            audit.record_failure(self.store, sender, action, exc,
                                 refused=self._refusals(requests, at, sender))
            raise
        return BundleOutcome(action, entries, prefer)

    def process_resource(self, resource: dict[str, Any], *, sender: str, method: str = "POST",
                         id: str | None = None, conditional: str | None = None,
                         prefer: str = "representation") -> EntryOutcome:
        """One resource: POST, PUT by id, or conditional PUT ``identifier=s|v``. Raises on error."""
        rtype = str(resource.get("resourceType", ""))
        url = f"{rtype}?{conditional}" if conditional else f"{rtype}/{id}" if id else rtype
        request = Request(0, method.upper(), rtype, resource, url=url)
        action = "update" if request.method == "PUT" else "create"
        try:
            entry = self._transaction([request], sender, None, action=action)[0]
        except AdapterError as exc:
            audit.record_failure(self.store, sender, action, exc,
                                 refused=self._refusals([request], {0: exc}, sender))
            raise
        if prefer != "representation":
            entry.resource = None
        return entry

    def enroll(self, system: str, value: str, subject: str) -> None:
        """Enroll the Patient with identifier ``system|value`` as ``subject`` (before it comes)."""
        with self.store.transaction() as unit:
            unit.enroll(system, value, subject, status="on-study")

    def records(self, subjects: Iterable[str] | None = None) -> list[ParticipantRecord]:
        with self.store.read() as unit:
            return unit.records(subjects)

    def validate(self, document: dict[str, Any], *, resource_type: str | None = None,
                 profile: str | None = None) -> dict[str, Any]:
        """``$validate``: the OperationOutcome of a resource or of a Bundle (entry by entry);
        nothing is stored. Raises UnusableInput only for what is not FHIR at all."""
        check_document(document, resource_type)
        enrolled = self._enrolled(requests_of(document), None)
        return validation_outcome(
            self.validator, document, resource_type=resource_type, profile=profile,
            enrolled=enrolled if document["resourceType"] == "Bundle" else bool(enrolled))

    def _refusals(self, requests: list[Request], failed: dict[int, AdapterError | None],
                  sender: str) -> list[dict[str, Any]]:
        """What the refused entries (by index) were about, for their audit row."""
        if not failed or not requests:
            return []
        try:
            with self.store.read() as unit:
                found = [refusals.describe(unit, self.mapper, sender, r, requests, error)
                         for r in requests if (error := failed.get(r.index)) is not None]
        except AdapterError:  # the refusal is told all the same; its detail is lost
            return []
        return [f for f in found if f is not None]

    def audit_records(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest audit rows, newest first: sender, at, action, resources, outcome."""
        return audit.records(self.store, limit)

    # -- the steps -----------------------------------------------------------------------------
    def _ingest_file(self, path: Path, sender: str, summary: LoadSummary) -> None:
        opened = read_path(path, on_error=summary.add_unreadable)
        if opened.bundle_type is not None:
            document = opened.document or {}
            try:
                outcome = self.process_bundle(document, sender=sender, source=str(path))
            except AdapterError as exc:
                types = [str((e.get("resource") or {}).get("resourceType", "(none)"))
                         for e in document.get("entry") or [] if isinstance(e, dict)]
                summary.add_error(exc.located(file=str(path)), types)
                return
            for entry in outcome.entries:
                summary.add(entry)
                if entry.error is not None:
                    summary.errors.append(entry.error)
            return
        before = len(summary.errors)
        try:
            self._ingest_lines(path, opened, sender, summary)
        finally:  # unreadable lines are told as they are read, refused ones per chunk
            summary.errors[before:] = sorted(summary.errors[before:],
                                             key=lambda e: e.where.line or 0)

    def _ingest_lines(self, path: Path, opened: InputFile, sender: str,
                      summary: LoadSummary) -> None:
        workers = worker_count(self.settings)
        if (workers and self.settings is not None and opened.format == "ndjson"
                and _size(path) >= parallel.MIN_BYTES):
            with Prevalidator(self.settings, workers) as pool:
                lines = pool.lines(ndjson_lines(path))
                ingest_lines(self, _checked_requests(lines, path, summary), sender=sender,
                             file=str(path), summary=summary)
            return
        ingest_lines(self, _requests(opened), sender=sender, file=str(path), summary=summary)

    def _transaction(self, requests: list[Request], sender: str, file: str | None,
                     shared: Shared = ({}, {}), *, action: str | None = None) -> list[EntryOutcome]:
        """One database transaction; with ``action`` its audit row is written in it too."""
        enrolled = self._enrolled(requests, sender)
        for request in requests:
            self._check(request, file, request.index in enrolled)
        answers: dict[int, EntryOutcome] = {}
        with self.store.transaction() as unit:
            ctx = self._context(unit, sender, file, requests, shared)
            for request in processing_order(requests):
                answers[request.index] = self._handle(ctx, request)
            subjects = set().union(*(a.subjects for a in answers.values()))
            self._after_change(unit, subjects)
            if action is not None:
                audit.write(unit, sender, action, [answers[r.index] for r in requests],
                            200 if action == "transaction" else answers[requests[0].index].status)
        return [answers[r.index] for r in requests]

    def _each(self, requests: list[Request], sender: str, file: str | None) -> list[EntryOutcome]:
        """Each entry in its own transaction; fullUrls of the others still resolve."""
        shared: Shared = ({}, {})
        if len(requests) > 1:
            with self.store.read() as unit:
                for request in requests:
                    if request.resource is not None:
                        plan(unit, request, sender=sender, file=file)
            shared = (targets_of(requests)[0], stable_targets(requests))
        answers: dict[int, EntryOutcome] = {}
        for request in processing_order(requests):
            try:
                answers[request.index] = self._transaction([request], sender, file, shared)[0]
                shared[0].update(targets_of([request])[0])  # the id it got, if a race moved it
            except AdapterError as exc:
                exc.located(file=file, entry=request.index)
                answers[request.index] = EntryOutcome(
                    request.index, request.resource_type, "error", exc.http_status,
                    error=exc, outcome=error_outcome(exc))
        return [answers[r.index] for r in requests]

    def _check(self, request: Request, file: str | None, enrolled: bool = False) -> None:
        """Parse (base R4), then validate (profiles): an invalid resource is refused first,
        before the enrollment gate; ``enrolled``: the Patient of a participant (trial-patient)."""
        if request.method in ("DELETE", "GET", "HEAD", "PATCH"):
            raise UnusableInput(f"{request.method} entries are not supported",
                                where=request.where(file, "Bundle.entry.request.method"))
        if request.resource is None:
            raise UnusableInput("the entry has no resource", where=request.where(file))
        self._validate(request, file, enrolled)

    def _parse(self, request: Request, file: str | None) -> None:
        """Base R4 structure (StructureError listing every problem)."""
        assert request.resource is not None
        try:
            parse_resource(request.resource, base=request.resource_type or "Resource",
                           where=request.where(file))
        except AdapterError as exc:
            raise exc.located(file=file, entry=request.index) from None

    def _validate(self, request: Request, file: str | None, enrolled: bool = False) -> None:
        """The one call site of the profile validator. Its first layer is the base R4 parse,
        so a valid resource is parsed once; a refused one is parsed again on its own, so
        that a structural problem is answered as such (StructureError), before the profiles."""
        assert request.resource is not None
        try:
            issues = self.validator.validate(request.resource, enrolled=enrolled)
        except Exception:
            self._parse(request, file)
            raise
        errors = [i for i in issues if i.severity in ("error", "fatal")]
        if errors:
            self._parse(request, file)
            first = errors[0]
            raise ProfileError(first.diagnostics, issues=errors,
                               where=request.where(file, first.expression))

    def _enrolled(self, requests: list[Request], sender: str | None) -> set[int]:
        """Indices of the Patient requests of an enrolled participant (read before writing)."""
        if not any(r.resource_type == "Patient" for r in requests):
            return set()
        with self.store.read() as unit:
            return enrolled_patients(unit, requests, self.mapper, sender)

    def _context(self, unit: Unit, sender: str, file: str | None, requests: list[Request],
                 shared: Shared) -> Context:
        unit.prefetch(keys_of(requests, sender))  # one look-up for the whole Bundle
        for request in requests:
            plan(unit, request, sender=sender, file=file)
        check_overlaps(requests, file)
        targets, keys = targets_of(requests)
        return Context(unit, sender, file, self.mapper, self.study, {**shared[0], **targets}, keys,
                       {**shared[1], **stable_targets(requests)})

    def _handle(self, ctx: Context, request: Request) -> EntryOutcome:
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

    def _after_change(self, unit: Unit, subjects: set[str]) -> None:
        """Recompute the endpoints of these participants only (inside the same transaction)."""
        self.touched |= subjects
        self.results_flow.recompute(unit, subjects)  # results side

    def _defer(self, unit: Unit, subjects: set[str]) -> None:
        """Queue these participants' recomputation in the same transaction (bulk loads)."""
        self.touched |= subjects
        unit.mark_stale(sorted(subjects))

    def recompute_stale(self) -> None:
        """Recompute the participants a bulk load queued (each once)."""
        self.results_flow.recompute_stale()


def _conditional(ctx: Context, query: ConditionalReference) -> str:
    if query.resource_type == "ResearchStudy":
        return query.text  # the study is named, not stored: the mapper checks it
    return resolve_conditional(ctx.unit, query, ctx.bundle_keys)


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


def _checked_requests(lines: Iterable[tuple[int, bytes, bool]], path: Path,
                      summary: LoadSummary) -> Iterator[Request]:
    """NDJSON lines a worker has validated: read here (an unreadable one is reported and
    left), marked ``validated`` when the worker found no error."""
    for line_no, text, passed in lines:
        try:
            resource = loads(text, where=Where(str(path), line=line_no))
        except UnusableInput as exc:
            summary.add_unreadable(exc)
            continue
        request = Request(line_no, "POST", str(resource["resourceType"]), resource)
        request.validated = passed
        yield request


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _requests(entries: Iterable[BundleEntry]) -> Iterator[Request]:
    for e in entries:
        resource = e.resource
        rtype = str(resource.get("resourceType", "")) if resource else ""
        if not rtype and e.request_url:
            rtype = e.request_url.split("?")[0].split("/")[0]
        method = (e.request_method or "POST").upper()
        yield Request(e.index, method, rtype, resource, e.full_url, e.request_url,
                      e.if_none_exist)

