"""Bulk Data export of the published results: NDJSON per resource type, read in chunks.

What a full export holds is what the whole result Bundle holds (RESULTS.md), resource for
resource, but the Provenance (it describes a Bundle, and an export is none): the study, every
participant's Patient and ResearchSubject, every result (withdrawn ones as entered-in-error),
the source Observations, the study summary. With ``_since`` (Bulk Data Access IG v2,
export.html, "Query Parameters": resources whose state changed after it) it holds the results
written after that instant, the sources they derive from and their participants; the results
withdrawn since are listed in ``deleted`` (export.html, "Response - Complete Status":
transaction Bundles of DELETE entries) instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from fhir_adapter.publication import Publication
from fhir_adapter.publication.recompute import WITHDRAWN
from fhir_adapter.publication.summary import as_resource
from fhir_adapter.store import ResultRow, Unit
from fhir_adapter.store.export_files import ExportFiles, FileEntry, JobWriter
from fhir_adapter.store.exports import ExportJob, ExportJobs, result_subjects
from fhir_adapter.store.published import newest_result_writes, source_documents
from fhir_adapter.store.snapshots import snapshot

__all__ = ["EXPORT_TYPES", "ExportRequest", "ExportRunner", "TypeFilter"]

log = logging.getLogger("fhir_adapter.export")

#: The resource types an export can hold, in the order their lines are written.
EXPORT_TYPES = ("ResearchStudy", "PlanDefinition", "Patient", "ResearchSubject", "Observation",
                "MeasureReport")
#: Participants read and written per chunk: memory holds one chunk's results at a time.
BATCH = 10


@dataclass(frozen=True, slots=True)
class TypeFilter:
    """One ``_typeFilter`` search (``Observation?code=...&subject=...``): every parameter
    must match; each parameter's comma-separated values are alternatives."""

    resource_type: str
    params: tuple[tuple[str, tuple[str, ...]], ...]

    def matches(self, resource: dict[str, Any]) -> bool:
        return all(_MATCHERS[name](resource, values) for name, values in self.params)


def _code_matches(resource: dict[str, Any], values: tuple[str, ...]) -> bool:
    codings = (resource.get("code") or {}).get("coding") or []
    for value in values:
        system, bar, code = value.rpartition("|")
        for coding in codings:
            if coding.get("code") == code and (not bar or coding.get("system", "") == system):
                return True
    return False


def _subject_matches(resource: dict[str, Any], values: tuple[str, ...]) -> bool:
    reference = str((resource.get("subject") or {}).get("reference", ""))
    return any(reference in (v, f"Patient/{v}") for v in values)


_MATCHERS = {"code": _code_matches, "subject": _subject_matches}
#: The search parameters a ``_typeFilter`` may use, per resource type.
FILTER_PARAMS = {"Observation": frozenset(_MATCHERS)}


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What a kick-off asked for, as kept with its job."""

    types: tuple[str, ...] = EXPORT_TYPES
    since: datetime | None = None
    filters: tuple[TypeFilter, ...] = field(default=())
    group: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"types": list(self.types), "since": self.since.isoformat() if self.since else None,
                "filters": [{"type": f.resource_type, "params": [[n, list(v)] for n, v in f.params]}
                            for f in self.filters],
                "group": self.group}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportRequest:
        since = data.get("since")
        return cls(tuple(data.get("types") or EXPORT_TYPES),
                   datetime.fromisoformat(since) if since else None,
                   tuple(TypeFilter(f["type"], tuple((n, tuple(v)) for n, v in f["params"]))
                         for f in data.get("filters") or []),
                   data.get("group"))

    def wants(self, resource: dict[str, Any]) -> bool:
        kind = str(resource.get("resourceType"))
        if kind not in self.types:
            return False
        filters = [f for f in self.filters if f.resource_type == kind]
        return not filters or any(f.matches(resource) for f in filters)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(str(value).encode("ascii"))
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _line(resource: dict[str, Any]) -> bytes:
    return orjson.dumps(resource, default=_default)


class _Stopped(Exception):
    """The job was deleted, or taken over, while it ran."""


class ExportRunner:
    """Runs one export job to its end: files renamed whole, the job completed or failed."""

    def __init__(self, publication: Publication, jobs: ExportJobs, files: ExportFiles, *,
                 owner: str, retention: timedelta, batch: int = BATCH) -> None:
        self.publication = publication
        self.jobs = jobs
        self.files = files
        self.owner = owner
        self.retention = retention
        self.batch = batch

    def run(self, job: ExportJob) -> None:
        writer = self.files.writer(job.id)
        try:
            instant = self._write(job, ExportRequest.from_json(job.parameters), writer)
            entries = writer.commit()
        except _Stopped:
            writer.discard()
            return
        except Exception as exc:  # a job that fails says so; the server goes on
            log.exception("export %s failed", job.id)
            writer.discard()
            self.jobs.finish(job.id, self.owner, output=None, retention=self.retention,
                             error=f"the export failed: {type(exc).__name__}: {exc}")
            return
        output = {"transactionTime": instant.isoformat(),
                  "files": [_file_json(e) for e in entries]}
        if not self.jobs.finish(job.id, self.owner, output=output, error=None,
                                retention=self.retention):
            self.files.remove(job.id)  # deleted meanwhile

    def _write(self, job: ExportJob, request: ExportRequest, writer: JobWriter) -> datetime:
        key = self.publication.key
        builder = key.builder(key.for_reading())
        with snapshot(self.publication.store) as (unit, instant):
            people = {p.subject: p for p in unit.participants()}
            subjects = _subjects(unit, request.since, people)
            self._step(job, 0, len(subjects), instant)
            if request.since is None:
                newest = max(newest_result_writes(unit).values(), default=instant)
                self._emit(writer, request, builder.stamped_study_resources(newest))
            written = 0
            for first in range(0, len(subjects), self.batch):
                batch = subjects[first:first + self.batch]
                written += self._chunk(unit, builder, request, writer, batch, people)
                self._step(job, first + len(batch), len(subjects), instant)
        if request.since is None or written:
            summary = self.publication.bundles.without_results()["entry"]
            self._emit(writer, request, [e["resource"] for e in summary
                                         if e["resource"]["resourceType"] == "MeasureReport"])
        return instant

    def _chunk(self, unit: Unit, builder: Any, request: ExportRequest, writer: JobWriter,
               batch: list[str], people: dict[str, Any]) -> int:
        rows = unit.results(subjects=batch, since=request.since)
        if request.since is not None:
            withdrawn = [r for r in rows if r.status == WITHDRAWN]
            rows = [r for r in rows if r.status != WITHDRAWN]
            self._deleted(writer, request, builder, withdrawn)
            batch = sorted({r.subject for r in rows})
        if not batch:
            return 0
        chosen = [p for s in batch if (p := people.get(s)) is not None]
        resources = builder.published_part(
            [as_resource(r) for r in rows], participants=[p.as_participant() for p in chosen],
            sources=source_documents(unit, {r.subject for r in rows}),
            subject_status={p.subject: p.status for p in chosen})
        self._emit(writer, request, resources)
        return len(resources)

    def _deleted(self, writer: JobWriter, request: ExportRequest, builder: Any,
                 withdrawn: list[ResultRow]) -> None:
        if "Observation" not in request.types or not withdrawn:
            return
        ids = [str(r.resource.get("id")) for r in withdrawn]
        lines = [_line({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"request": {"method": "DELETE", "url": f"Observation/{i}"}}]}) for i in ids]
        writer.write("deleted", "Observation", lines)

    def _emit(self, writer: JobWriter, request: ExportRequest,
              resources: list[dict[str, Any]]) -> None:
        by_type: dict[str, list[bytes]] = {}
        for resource in resources:
            if request.wants(resource):
                by_type.setdefault(resource["resourceType"], []).append(_line(resource))
        for kind in EXPORT_TYPES:
            writer.write("output", kind, by_type.pop(kind, []))

    def _step(self, job: ExportJob, done: int, total: int, instant: datetime) -> None:
        status = self.jobs.progress(job.id, self.owner, done=done, total=total,
                                    transaction_time=instant)
        if status != "running":
            raise _Stopped(status)


def _subjects(unit: Unit, since: datetime | None, people: dict[str, Any]) -> list[str]:
    """The participants an export goes through: every one (full), or those with a result
    written after ``since``."""
    if since is None:
        return sorted(set(people) | set(result_subjects(unit)))
    return result_subjects(unit, since=since)


def _file_json(entry: FileEntry) -> dict[str, Any]:
    return {"kind": entry.kind, "type": entry.resource_type, "name": entry.name,
            "count": entry.count}
