"""Files of many lines (NDJSON): chunks of lines per transaction, a savepoint per line; the
participants a chunk touched are queued, and recomputed once at the end of the load."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from itertools import islice
from typing import TYPE_CHECKING

from fhir_adapter.errors import AdapterError
from fhir_adapter.fhir import error_outcome
from fhir_adapter.pipeline import audit
from fhir_adapter.pipeline.outcomes import EntryOutcome, LoadSummary
from fhir_adapter.pipeline.requests import Request
from fhir_adapter.pipeline.validating import enrolled_patients
from fhir_adapter.store import Unit, identity_keys

if TYPE_CHECKING:
    from fhir_adapter.pipeline.orchestrator import Pipeline

__all__ = ["CHUNK_LINES", "ingest_lines", "keys_of"]

#: Lines per database transaction: each chunk is committed with its participants queued for
#: recomputation and its own audit row, so memory stays flat whatever the file's length.
CHUNK_LINES = 1000


def ingest_lines(pipeline: Pipeline, lines: Iterable[Request], *, sender: str, file: str,
                 summary: LoadSummary) -> None:
    """Each line is refused or kept alone (as in a batch). A line that is not JSON is told by
    the reader and left; a file that cannot be read on (an I/O error) stops there, the lines
    before it kept, and the error is raised."""
    source: Iterator[Request] = iter(lines)
    first = True
    while True:
        chunk: list[Request] = []
        failure: AdapterError | None = None
        try:
            for request in islice(source, CHUNK_LINES):
                chunk.append(request)
        except AdapterError as exc:
            failure = exc
        if chunk or first:  # an empty file is audited too
            _chunk(pipeline, chunk, sender, file, summary)
        first = False
        if failure is not None:
            raise failure
        if len(chunk) < CHUNK_LINES:
            return


def _chunk(pipeline: Pipeline, requests: list[Request], sender: str, file: str,
           summary: LoadSummary) -> None:
    """One transaction: every line, the touched participants queued for recomputation, the
    audit row."""
    done: list[EntryOutcome] = []
    with pipeline.store.transaction() as unit:
        unit.prefetch(keys_of(requests, sender))
        subjects: set[str] = set()
        for request in requests:
            entry = _line(pipeline, unit, request, sender, file)
            entry.resource = None  # answered: only its counts and key are kept
            subjects |= entry.subjects
            done.append(entry)
        pipeline._defer(unit, subjects)  # recomputed once at the end of the load
        audit.write(unit, sender, "ingest", done)
    for entry in done:
        summary.add(entry)
        if entry.error is not None:
            summary.errors.append(entry.error)


def _line(pipeline: Pipeline, unit: Unit, request: Request, sender: str,
          file: str) -> EntryOutcome:
    try:
        if not request.validated:
            enrolled = request.resource_type == "Patient" and bool(
                enrolled_patients(unit, [request], pipeline.mapper, sender))
            pipeline._check(request, file, enrolled)
        with unit.savepoint():  # what a refused line wrote goes, the others' stays
            ctx = pipeline._context(unit, sender, file, [request], ({}, {}))
            return pipeline._handle(ctx, request)
    except AdapterError as exc:
        # an NDJSON line by its number (from 1); a lone resource (index 0) by its file alone
        exc.where = replace(exc.where, file=file, line=request.index or None, entry=None)
        return EntryOutcome(request.index, request.resource_type, "error", exc.http_status,
                            error=exc, outcome=error_outcome(exc))


def keys_of(requests: Iterable[Request], sender: str) -> list[str]:
    """The identity keys of these requests' resources (what is not a resource is skipped:
    it is refused later, with its reason)."""
    keys: list[str] = []
    for request in requests:
        if isinstance(request.resource, dict):
            try:
                keys += identity_keys(request.resource, sender=sender,
                                      full_url=request.full_url)
            except (AttributeError, TypeError, ValueError):
                continue
    return keys
