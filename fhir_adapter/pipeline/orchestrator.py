"""The Pipeline: every way in (files, Bundles, single resources) goes through these steps."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from fhir_adapter.errors import AdapterError, NotFhir, UnusableInput, Where
from fhir_adapter.fhir import InputFile, bundle_entries, is_ndjson_file, ndjson_lines, read_path
from fhir_adapter.mapping import Mapper, check_subject_code
from fhir_adapter.pipeline import audit, parallel, refusals
from fhir_adapter.pipeline.bulk import ingest_lines
from fhir_adapter.pipeline.entries import (
    bundle_requests,
    checked_line_requests,
    document_requests,
    expand_inputs,
    file_size,
)
from fhir_adapter.pipeline.export import ingest_export
from fhir_adapter.pipeline.outcomes import BundleOutcome, EntryOutcome, LoadSummary
from fhir_adapter.pipeline.parallel import Prevalidator, worker_count
from fhir_adapter.pipeline.requests import Request, refuse_unsupported
from fhir_adapter.pipeline.sdtm_export import export_sdtm
from fhir_adapter.pipeline.validating import (
    check_document,
    load_mapper,
    make_validator,
    validation_outcome,
)
from fhir_adapter.pipeline.writer import Writer
from fhir_adapter.publication import Publication, RecomputeReport, configured_key
from fhir_adapter.sdtm import ExportReport
from fhir_adapter.settings import Settings
from fhir_adapter.store import Store
from fhir_adapter.store.outbox import OutboxStore
from fhir_adapter.store.tokens import Principal
from fhir_adapter.trial.definitions import StudyDefinition
from fhir_adapter.trial.model import ParticipantEndpoints, ParticipantRecord
from fhir_adapter.validation import Validator

__all__ = ["Pipeline"]

Clock = Callable[[], datetime]
Progress = Callable[[Path], None]
_PER_ENTRY = frozenset({"batch", "collection"})


class Pipeline:
    """Parse, validate, enrollment gate, map, persist; then recompute the touched participants.

    Writing is the Writer's (``writer``); what is published, read and searched is the
    Publication's (``publication``), which the writes call back to recompute."""

    def __init__(self, store: Store, mapper: Mapper, study: StudyDefinition,
                 validator: Validator, *, pseudonym_key: bytes | None = None) -> None:
        self.store = store
        self.mapper = mapper
        self.study = study
        self.validator = validator
        self.publication = Publication(store, study, mapper.catalogue,
                                       pseudonym_key=pseudonym_key,
                                       terminology=mapper.terminology)
        recomputer = self.publication.recomputer
        self.writer = Writer(store, mapper, validator, after_change=recomputer.recompute,
                             after_queue=recomputer.queue)
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
        pipeline = cls(store, mapper, mapper.study, make_validator(mapper, settings),
                       pseudonym_key=configured_key(settings))
        pipeline.settings = settings
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
        """Bundles and lone resources file by file; the NDJSON files, after them, as one
        export (``pipeline.export``: enrollment first, ``Type/id`` resolved across files)."""
        export: list[Path] = []
        for path, walked in expand_inputs(paths):
            summary.files += 1
            if _is_ndjson(path):
                export.append(path)
                continue
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
        if export:
            ingest_export(self, export, sender=sender, summary=summary)
            for path in export:
                if progress is not None:
                    progress(path)

    def process_bundle(self, bundle: dict[str, Any], *, sender: str, source: str = "request",
                       prefer: str = "representation",
                       principal: Principal | None = None) -> BundleOutcome:
        """A transaction (all or nothing: raises the first failing entry's error), or a batch
        or collection (each entry alone). Entries are answered in request order.
        ``principal``: the token writing (each create needs its ``c``, each update its ``u``)."""
        kind = bundle.get("type")
        action = str(kind or "bundle")
        requests: list[Request] = []
        try:
            requests = list(bundle_requests(bundle_entries(bundle, file=source)))
            self.writer.check_bundle(bundle, requests, sender, source)  # an invalid type too
            if kind not in ("transaction", *_PER_ENTRY):
                raise UnusableInput(f"Bundle.type {kind!r} cannot be processed",
                                    where=Where(source, None, "Bundle.type"))
            if kind == "transaction":
                refuse_unsupported(bundle, source)
                entries = self.writer.transaction(requests, sender, source, action=action,
                                                  principal=principal)
            else:
                entries = self.writer.each(requests, sender, source, principal=principal)
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
                         prefer: str = "representation",
                         if_match: str | None = None,
                         principal: Principal | None = None) -> EntryOutcome:
        """One resource: POST, PUT by id (kept under that id), or conditional PUT
        ``identifier=s|v``; ``if_match``: the version it updates (412 otherwise). Raises on
        error."""
        rtype = str(resource.get("resourceType", ""))
        url = f"{rtype}?{conditional}" if conditional else f"{rtype}/{id}" if id else rtype
        request = Request(0, method.upper(), rtype, resource, url=url, if_match=if_match,
                          by_id=method.upper() == "PUT" and bool(id) and not conditional)
        action = "update" if request.method == "PUT" else "create"
        try:
            entry = self.writer.transaction([request], sender, None, action=action,
                                            principal=principal)[0]
        except AdapterError as exc:
            audit.record_failure(self.store, sender, action, exc,
                                 refused=self._refusals([request], {0: exc}, sender))
            raise
        if prefer != "representation":
            entry.resource = None
        return entry

    def enroll(self, system: str, value: str, subject: str) -> None:
        """Enroll the Patient with identifier ``system|value`` as ``subject`` (before it comes);
        a subject code that is this identifier's value is refused (``check_subject_code``)."""
        check_subject_code(subject, [(system or None, value)], where=Where(element="subject"))
        with self.store.transaction() as unit:
            unit.enroll(system, value, subject, status="on-study")
            self.publication.recomputer.ensure_key(unit)  # a participant is published under it

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
        except (AdapterError, AttributeError, TypeError, ValueError):
            return []  # the refusal is told all the same; its detail is lost
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
        if opened.format == "ndjson":
            self._ingest_ndjson(path, sender, summary)
            return
        ingest_lines(self.writer, bundle_requests(opened), sender=sender, file=str(path),
                     summary=summary)

    def _ingest_ndjson(self, path: Path, sender: str, summary: LoadSummary, *,
                       skip: Collection[int] = ()) -> None:
        """The lines of an NDJSON file but those in ``skip`` (taken by an earlier phase)."""
        workers = worker_count(self.settings)
        raw: Iterator[tuple[int, bytes]] = (
            (n, text) for n, text in ndjson_lines(path) if n not in skip)
        if workers and self.settings is not None and file_size(path) >= parallel.MIN_BYTES:
            with Prevalidator(self.settings, workers) as pool:
                ingest_lines(self.writer, checked_line_requests(pool.lines(raw), path,
                                                                summary.add_unreadable),
                             sender=sender, file=str(path), summary=summary)
            return
        ingest_lines(self.writer, checked_line_requests(((n, t, False) for n, t in raw), path,
                                                        summary.add_unreadable),
                     sender=sender, file=str(path), summary=summary)

    # -- what is published (the api's and the command line's port to the publication) ----
    def recompute_stale(self) -> RecomputeReport:
        """Recompute the participants a bulk load queued (each once)."""
        return self.publication.recomputer.recompute_stale()

    def recompute_all(self) -> RecomputeReport:
        """Recompute every participant (e.g. after the study definition changed)."""
        return self.publication.recomputer.recompute_all()

    def endpoints(self) -> list[ParticipantEndpoints]:
        return self.publication.recomputer.endpoints()

    def result_bundle(self, since: datetime | None = None) -> dict[str, Any]:
        """The ``collection`` result Bundle; with ``since`` only what changed after it."""
        bundles = self.publication.bundles
        return bundles.whole() if since is None else bundles.incremental(since)

    def push_bundle(self, result_keys: Sequence[str] | None) -> dict[str, Any]:
        """The ``transaction`` Bundle of the current version of these results (None: all)."""
        return self.publication.bundles.push(result_keys)

    def read_result(self, resource_type: str, id: str) -> dict[str, Any]:
        return self.publication.search.read(resource_type, id)

    def search_results(self, resource_type: str,
                       params: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
        return self.publication.search.search(resource_type, params)

    def search_in_pool(self, resource_type: str, params: Mapping[str, Sequence[str]], *,
                       everything: bool = False) -> tuple[list[dict[str, Any]],
                                                          list[dict[str, Any]]]:
        """A search's matches and what ``_include``/``_revinclude`` may add to them."""
        return self.publication.search.search_in_pool(resource_type, params,
                                                      everything=everything)

    def study_id(self) -> str:
        """The id of the adapter's ResearchStudy (``ResearchStudy/{id}/$endpoint-results``)."""
        return self.publication.study_id()

    def results_csv(self) -> str:
        return self.publication.csv()

    def export_sdtm(self, out: Path, format: str = "dataset-json") -> ExportReport:  # noqa: A002
        """CDISC SDTM datasets (DM, LB, EX, SV, TV) of every participant into the folder
        ``out``, with define.xml and metadata.json; pseudonymised as the results are."""
        mappings = self.settings.mappings_dir if self.settings is not None else None
        return export_sdtm(self.publication, out, format, mappings=mappings)

    @property
    def outbox(self) -> OutboxStore:
        """The delivery queue (claimed by fhir_adapter.outbound)."""
        return self.publication.outbox


def _is_ndjson(path: Path) -> bool:
    try:
        return is_ndjson_file(path)
    except OSError:
        return False
