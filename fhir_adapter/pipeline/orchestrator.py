"""The Pipeline: every way in (files, Bundles, single resources) goes through these steps."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from fhir_adapter.errors import AdapterError, NotFhir, UnusableInput, Where
from fhir_adapter.fhir import InputFile, bundle_entries, ndjson_lines, read_path
from fhir_adapter.mapping import Mapper
from fhir_adapter.pipeline import audit, parallel, refusals
from fhir_adapter.pipeline.bulk import ingest_lines
from fhir_adapter.pipeline.entries import (
    bundle_requests,
    checked_line_requests,
    document_requests,
    expand_inputs,
    file_size,
)
from fhir_adapter.pipeline.outcomes import BundleOutcome, EntryOutcome, LoadSummary
from fhir_adapter.pipeline.parallel import Prevalidator, worker_count
from fhir_adapter.pipeline.requests import Request
from fhir_adapter.pipeline.results_access import ResultsAccess  # results side
from fhir_adapter.pipeline.results_flow import configured_key  # results side
from fhir_adapter.pipeline.validating import (
    check_document,
    load_mapper,
    make_validator,
    validation_outcome,
)
from fhir_adapter.pipeline.writer import Writer
from fhir_adapter.settings import Settings
from fhir_adapter.store import Store, Unit
from fhir_adapter.trial.definitions import StudyDefinition
from fhir_adapter.trial.model import ParticipantRecord
from fhir_adapter.validation import Validator

__all__ = ["Pipeline"]

Clock = Callable[[], datetime]
Progress = Callable[[Path], None]
_PER_ENTRY = frozenset({"batch", "collection"})


class Pipeline(ResultsAccess):
    """Parse, validate, enrollment gate, map, persist; then recompute the touched participants."""

    def __init__(self, store: Store, mapper: Mapper, study: StudyDefinition,
                 validator: Validator) -> None:
        self.store = store
        self.mapper = mapper
        self.study = study
        self.validator = validator
        self.writer = Writer(store, mapper, validator, after_change=self._after_change,
                             after_queue=self._after_queue)
        #: what the pipeline was built from (None when built by hand): bulk workers rebuild
        #: the same validator from it
        self.settings: Settings | None = None

    @property
    def touched(self) -> set[str]:
        """Every participant a write of this pipeline changed."""
        return self.writer.touched

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> Pipeline:
        mapper = load_mapper(settings)
        store = Store.open(settings.db_url(), clock=clock)
        pipeline = cls(store, mapper, mapper.study, make_validator(mapper))
        pipeline.settings = settings
        pipeline.pseudonym_key = configured_key(settings)  # results side
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
            requests = list(bundle_requests(bundle_entries(bundle, file=source)))
            if kind == "transaction":
                entries = self.writer.transaction(requests, sender, source, action=action)
            else:
                entries = self.writer.each(requests, sender, source)
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
            entry = self.writer.transaction([request], sender, None, action=action)[0]
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
            self.results_flow.ensure_key(unit)  # a participant is published under it

    def records(self, subjects: Iterable[str] | None = None) -> list[ParticipantRecord]:
        with self.store.read() as unit:
            return unit.records(subjects)

    def validate(self, document: dict[str, Any], *, resource_type: str | None = None,
                 profile: str | None = None) -> dict[str, Any]:
        """``$validate``: the OperationOutcome of a resource or of a Bundle (entry by entry);
        nothing is stored. Raises UnusableInput only for what is not FHIR at all."""
        check_document(document, resource_type)
        enrolled = self.writer.enrolled(document_requests(document), None)
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
                and file_size(path) >= parallel.MIN_BYTES):
            with Prevalidator(self.settings, workers) as pool:
                lines = pool.lines(ndjson_lines(path))
                ingest_lines(self.writer, checked_line_requests(lines, path,
                                                                summary.add_unreadable),
                             sender=sender, file=str(path), summary=summary)
            return
        ingest_lines(self.writer, bundle_requests(opened), sender=sender, file=str(path),
                     summary=summary)

    def _after_change(self, unit: Unit, subjects: set[str]) -> None:
        """Recompute the endpoints of these participants only (inside the same transaction)."""
        self.results_flow.recompute(unit, subjects)  # results side

    def _after_queue(self, unit: Unit, subjects: set[str]) -> None:
        """Queue these participants' recomputation in the same transaction (bulk loads)."""
        self.results_flow.queue(unit, subjects)  # results side

    def recompute_stale(self) -> None:
        """Recompute the participants a bulk load queued (each once)."""
        self.results_flow.recompute_stale()
