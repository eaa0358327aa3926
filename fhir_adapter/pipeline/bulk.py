"""Files of many lines (NDJSON): chunks of lines per transaction, a savepoint per line; the
participants a chunk touched are queued, and recomputed once at the end of the load."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

from fhir_adapter.errors import AdapterError
from fhir_adapter.pipeline import audit
from fhir_adapter.pipeline.outcomes import LoadSummary
from fhir_adapter.pipeline.requests import Request
from fhir_adapter.pipeline.writer import Writer

__all__ = ["CHUNK_LINES", "ingest_lines"]

#: Lines per database transaction: each chunk is committed with its participants queued for
#: recomputation and its own audit row, so memory stays flat whatever the file's length.
CHUNK_LINES = 1000


def ingest_lines(writer: Writer, lines: Iterable[Request], *, sender: str, file: str,
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
            _chunk(writer, chunk, sender, file, summary)
        first = False
        if failure is not None:
            raise failure
        if len(chunk) < CHUNK_LINES:
            return


def _chunk(writer: Writer, requests: list[Request], sender: str, file: str,
           summary: LoadSummary) -> None:
    """One transaction: every line, the touched participants queued for recomputation, the
    audit row."""
    with writer.store.transaction() as unit:
        done = writer.lines(unit, requests, sender, file)
        audit.write(unit, sender, "ingest", done)
    for entry in done:
        summary.add(entry)
        if entry.error is not None:
            summary.errors.append(entry.error)
