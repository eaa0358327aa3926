"""The NDJSON files of one export, loaded as one: enrollment first, whatever the file order.

A Bulk Data export (FHIR Bulk Data Access IG v2, "Bulk Data Output File Request") writes one
file per resource type, each resource with its server ``id``, and references between them of
the form ``Type/id``. A ResearchSubject naming ``Patient/x000`` cannot be judged before that
Patient is known, and an Observation of that Patient cannot be judged before the enrollment.
So the files of one export are read in three phases, each line handled once:

1. the ResearchSubjects, with the Patients they name, as one set of entries whose ``Type/id``
   references resolve to one another (as the entries of a batch do); a ResearchSubject's
   ``study`` naming the export's own ResearchStudy of this study is known as this study;
2. the other Patients (a roster enrollment by identifier keeps them);
3. every other line, in file order (Specimens and Observations find each other either way).

The first phase holds its resources in memory (one pair per participant); the others stream
the files line by line, as any NDJSON load does.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from fhir_adapter.errors import AdapterError, UnusableInput, Where
from fhir_adapter.fhir import error_outcome, ndjson_lines
from fhir_adapter.pipeline import audit
from fhir_adapter.pipeline.bulk import ingest_lines
from fhir_adapter.pipeline.outcomes import EntryOutcome, LoadSummary
from fhir_adapter.pipeline.requests import Request, plan, processing_order, targets_of
from fhir_adapter.pipeline.writer import peers_of

if TYPE_CHECKING:
    from fhir_adapter.mapping import Mapper
    from fhir_adapter.pipeline.writer import Writer
    from fhir_adapter.store import Store
    from fhir_adapter.trial.definitions import StudyDefinition


class Pipeline(Protocol):
    """What an export load needs of the pipeline (``orchestrator.Pipeline`` provides it)."""

    store: Store
    mapper: Mapper
    study: StudyDefinition
    writer: Writer

    def _ingest_ndjson(self, path: Path, sender: str, summary: LoadSummary, *,
                       skip: Collection[int] = ()) -> None: ...

__all__ = ["ExportFile", "ingest_export", "scan"]

_ENROLLMENT_MARKS = (b'"ResearchSubject"', b'"Patient"', b'"ResearchStudy"')


@dataclass(slots=True)
class ExportFile:
    """One NDJSON file of an export, and the lines of it an earlier phase took."""

    path: Path
    subjects: list[int] = field(default_factory=list)  # ResearchSubject lines
    patients: dict[int, str] = field(default_factory=dict)  # Patient line -> its id ("" none)
    studies: dict[int, dict[str, Any]] = field(default_factory=dict)  # ResearchStudy lines
    taken: set[int] = field(default_factory=set)


def scan(paths: Iterable[Path], summary: LoadSummary) -> list[ExportFile]:
    """Where the ResearchSubjects, Patients and ResearchStudies are. A line that cannot be
    parsed is left to the last phase, which reports it; a file that cannot be read is an
    error of its own and is left out. Only lines that can be one of these types (they hold
    the type name as a JSON string) are parsed."""
    files: list[ExportFile] = []
    for path in paths:
        try:
            files.append(_scan_file(path))
        except UnusableInput as exc:
            summary.add_error(exc.located(file=str(path)))
    return files


def _scan_file(path: Path) -> ExportFile:
    found = ExportFile(path)
    for line_no, text in ndjson_lines(path):
        if not any(mark in text for mark in _ENROLLMENT_MARKS):
            continue
        try:
            resource = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        if rtype == "ResearchSubject":
            found.subjects.append(line_no)
        elif rtype == "Patient":
            rid = resource.get("id")
            found.patients[line_no] = rid if isinstance(rid, str) else ""
        elif rtype == "ResearchStudy":
            found.studies[line_no] = resource
    return found


def ingest_export(pipeline: Pipeline, paths: list[Path], *, sender: str,
                  summary: LoadSummary) -> None:
    """Load the NDJSON files of one export (see the module's docstring). Errors are told
    with file and line; a file that cannot be read is an error of its own."""
    before = len(summary.errors)
    files = scan(paths, summary)
    _enrollment(pipeline, files, sender, summary)
    for export_file in files:
        rest = {n for n in export_file.patients if n not in export_file.taken}
        if rest:
            ingest_lines(pipeline.writer, _selected(export_file.path, rest), sender=sender,
                         file=str(export_file.path), summary=summary)
            export_file.taken |= rest
    order = {str(f.path): n for n, f in enumerate(files)}
    for export_file in files:
        try:
            pipeline._ingest_ndjson(export_file.path, sender, summary, skip=export_file.taken)
        except AdapterError as exc:
            summary.add_error(exc.located(file=str(export_file.path)))
    summary.errors[before:] = sorted(
        summary.errors[before:],
        key=lambda e: (order.get(e.where.file or "", len(order)), e.where.line or 0))


def _enrollment(pipeline: Pipeline, files: list[ExportFile], sender: str,
                summary: LoadSummary) -> None:
    """Phase 1: the ResearchSubjects and the Patients they name, each entry in its own
    transaction, their ``Type/id`` references resolved among them."""
    located: list[tuple[Request, str]] = []
    named: set[str] = set()
    studies = {str(s.get("id")) for f in files for s in f.studies.values()
               if s.get("id") and pipeline.mapper.is_this_study(s)}
    for export_file in files:
        for request in _selected(export_file.path, set(export_file.subjects)):
            _name_the_study(request, studies, pipeline.study)
            located.append((request, str(export_file.path)))
            named |= _patient_ids(request)
    if not located:
        return
    for export_file in files:
        lines = {n for n, rid in export_file.patients.items() if rid and rid in named}
        for request in _selected(export_file.path, lines):
            located.append((request, str(export_file.path)))
    file_of = {id(request): name for request, name in located}
    requests = [request for request, _ in located]
    with pipeline.store.read() as unit:
        for request in requests:
            plan(unit, request, sender=sender, file=file_of[id(request)])
    shared: tuple[dict[str, str], dict[str, str]] = (targets_of(requests)[0], {})
    peers = peers_of(requests)
    done: list[EntryOutcome] = []
    for request in processing_order(requests):
        name = file_of[id(request)]
        try:
            entry = pipeline.writer.transaction([request], sender, name, shared,
                                                 deferred=True, peers=peers)[0]
            shared[0].update(targets_of([request])[0])
        except AdapterError as exc:
            exc.where = Where(name, None, exc.where.element, line=request.index or None)
            entry = EntryOutcome(request.index, request.resource_type, "error",
                                 exc.http_status, error=exc, outcome=error_outcome(exc))
        entry.resource = None
        done.append(entry)
        summary.add(entry)
        if entry.error is not None:
            summary.errors.append(entry.error)
    for export_file in files:
        export_file.taken |= set(export_file.subjects)
        export_file.taken |= {n for n, rid in export_file.patients.items() if rid in named}
    audit.record(pipeline.store, sender, "ingest", done)


def _name_the_study(request: Request, studies: set[str], study: StudyDefinition) -> None:
    """A ResearchSubject naming the export's own ResearchStudy of this study (``study:
    ResearchStudy/<EHR id>``) gets the study's identifier beside that reference, so that it is
    known as this study (the EHR's id is not the adapter's)."""
    resource = request.resource or {}
    reference = resource.get("study")
    if not isinstance(reference, dict) or "identifier" in reference:
        return
    text = reference.get("reference")
    if not isinstance(text, str):
        return
    rtype, _, rid = text.split("/_history/")[0].rstrip("/").rpartition("/")
    if rtype.rsplit("/", 1)[-1] == "ResearchStudy" and rid in studies:
        identifier = {"system": study.identifier_system, "value": study.identifier_value}
        request.resource = {**resource, "study": {**reference, "identifier": identifier}}


def _patient_ids(request: Request) -> set[str]:
    """The Patient ids a ResearchSubject names by a ``Patient/id`` reference."""
    individual = (request.resource or {}).get("individual")
    text = individual.get("reference") if isinstance(individual, dict) else None
    if isinstance(text, str) and "Patient/" in text:
        return {text.rstrip("/").rsplit("/", 1)[-1]}
    return set()


def _selected(path: Path, lines: set[int]) -> Iterator[Request]:
    """The requests of these lines of a file (read once, in file order)."""
    if not lines:
        return
    for line_no, text in ndjson_lines(path):
        if line_no in lines:
            try:
                resource = orjson.loads(text)
            except orjson.JSONDecodeError:
                continue
            yield Request(line_no, "POST", str(resource.get("resourceType", "")), resource)
