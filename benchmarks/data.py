"""Synthetic benchmark inputs of any size, made by the sample-bundle generator.

Two shapes: trial ``ParticipantRecord``s (the generator's Bundles mapped once through the
``Mapper``), and a bulk NDJSON export (``Patient``, ``Specimen``, ``MedicationAdministration``,
``Observation`` files plus the enrollment list) streamed to disk one participant at a time, so
that a file of a million Observations never sits in memory.
"""

from __future__ import annotations

import csv
import runpy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import IO, Any, cast

import orjson

from fhir_adapter.mapping import Mapper, Unmapped
from fhir_adapter.paths import mappings_dir, sample_bundles_dir
from fhir_adapter.terminology import SiteCodeMaps
from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition
from fhir_adapter.trial.model import Participant, ParticipantRecord

__all__ = [
    "BULK_TYPES",
    "ORDERS",
    "BulkExport",
    "Definitions",
    "definitions",
    "make_bundles",
    "participant_records",
    "read_enrollment",
    "write_bulk_export",
]

Json = dict[str, Any]
#: The NDJSON files of a bulk export, in the order they are loaded.
BULK_TYPES = ("Patient", "Specimen", "MedicationAdministration", "Observation")
_URN = "urn:uuid:"


@dataclass(frozen=True, slots=True)
class Definitions:
    """The study, the analyte catalogue and a Mapper over them (as the adapter loads them)."""

    study: StudyDefinition
    catalogue: AnalyteCatalogue
    mapper: Mapper


@cache
def definitions() -> Definitions:
    folder = mappings_dir()
    study = StudyDefinition.from_file(folder / "study.toml")
    catalogue = AnalyteCatalogue.from_file(folder / "analytes.toml")
    return Definitions(study, catalogue, Mapper(catalogue, study, SiteCodeMaps.load(folder)))


@cache
def _generator() -> Callable[..., Iterator[Json]]:
    namespace = runpy.run_path(str(sample_bundles_dir() / "generate.py"), run_name="bench_gen")
    return cast(Callable[..., Iterator[Json]], namespace["make_bundles"])


def make_bundles(n: int, *, seed: int, visits_per_year: int | None = None) -> Iterator[Json]:
    """The generator's transaction Bundles, one per participant, lazily."""
    return _generator()(n, seed=seed, visits_per_year=visits_per_year)


# -- trial records -------------------------------------------------------------------------------
def _subject_of(entries: list[Json]) -> str:
    for entry in entries:
        resource = entry["resource"]
        if resource["resourceType"] == "ResearchSubject":
            return str(resource["identifier"][0]["value"])
    raise ValueError("the generated Bundle has no ResearchSubject")


def record_of(bundle: Json, defs: Definitions) -> ParticipantRecord:
    """One participant's record: its Bundle mapped through the Mapper, as the pipeline would."""
    entries: list[Json] = bundle["entry"]
    mapper = defs.mapper
    specimen_times: dict[str, datetime | date | None] = {}
    record: ParticipantRecord | None = None
    for entry in entries:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            facts = mapper.patient(resource)
            record = ParticipantRecord(Participant(_subject_of(entries), facts.sex,
                                                   facts.birth_date))
        elif resource["resourceType"] == "Specimen":
            specimen_times[entry["fullUrl"]] = mapper.specimen_time(resource)
    if record is None:
        raise ValueError("the generated Bundle has no Patient")
    for entry in entries:
        resource = entry["resource"]
        key = f"{resource['resourceType']}/{entry['fullUrl'].removeprefix(_URN).replace('-', '')}"
        if resource["resourceType"] == "MedicationAdministration":
            infusion = mapper.administration(resource, source=key)
            if infusion is not None:
                record.infusions.append(infusion)
        elif resource["resourceType"] == "Observation":
            at = specimen_times.get((resource.get("specimen") or {}).get("reference", ""))
            mapped = mapper.observation(resource, source=key, specimen_time=at)
            if not isinstance(mapped, Unmapped):
                record.measurements.append(mapped)
    return record


def participant_records(n: int, *, seed: int = 1) -> list[ParticipantRecord]:
    """``n`` participants with a year of data each (the protocol schedule), mapped once."""
    defs = definitions()
    return [record_of(bundle, defs) for bundle in make_bundles(n, seed=seed)]


# -- bulk NDJSON -----------------------------------------------------------------------------------
@dataclass(slots=True)
class BulkExport:
    """The files of a bulk export on disk and what they hold."""

    folder: Path
    files: dict[str, Path] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    participants: int = 0

    @property
    def enrollment(self) -> Path:
        return self.folder / "enrollment.csv"

    @property
    def observations(self) -> Path:
        return self.files["Observation"]


def _local_id(full_url: str) -> str:
    return full_url.removeprefix(_URN).replace("-", "")


def _rewritten(value: Any, ids: dict[str, str]) -> Any:
    """A copy with every ``urn:uuid`` reference replaced by ``Type/id``."""
    if isinstance(value, dict):
        out = {k: _rewritten(v, ids) for k, v in value.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref in ids:
            out["reference"] = ids[ref]
        return out
    if isinstance(value, list):
        return [_rewritten(v, ids) for v in value]
    return value


def _export_lines(bundle: Json) -> Iterator[tuple[str, Json]]:
    """(type, resource with an id and literal references) for each exportable entry."""
    ids = {e["fullUrl"]: f"{e['resource']['resourceType']}/{_local_id(e['fullUrl'])}"
           for e in bundle["entry"]}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        rtype = resource["resourceType"]
        if rtype in BULK_TYPES:
            yield rtype, {"resourceType": rtype, "id": _local_id(entry["fullUrl"]),
                          **_rewritten({k: v for k, v in resource.items() if k != "resourceType"},
                                       ids)}


#: How the Observation lines of a bulk export are ordered: participant by participant (as a
#: per-patient export), or by the time they were taken, every participant interleaved (as a
#: hospital's lab feed over a year).
ORDERS = ("participant", "time")


def write_bulk_export(folder: Path, observations: int, *, seed: int = 1,
                      order: str = "participant") -> BulkExport:
    """Write exactly ``observations`` Observations (and their participants' Patient, Specimen,
    MedicationAdministration lines and enrollment) to ``folder``, one participant at a time.
    With ``order="time"`` the Observation file is then rewritten sorted by effective time
    (this sort holds the file in memory: it is for sizes up to a few hundred thousand)."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
    folder.mkdir(parents=True, exist_ok=True)
    export = BulkExport(folder, {t: folder / f"{t}.ndjson" for t in BULK_TYPES},
                        dict.fromkeys(BULK_TYPES, 0))
    handles: dict[str, IO[bytes]] = {t: p.open("wb") for t, p in export.files.items()}
    try:
        with export.enrollment.open("w", newline="") as enrollment:
            writer = csv.writer(enrollment)
            writer.writerow(["system", "value", "subject"])
            for bundle in make_bundles(observations // 100 + 1, seed=seed):
                if export.counts["Observation"] >= observations:
                    break
                _write_participant(bundle, writer, handles, export, observations)
    finally:
        for handle in handles.values():
            handle.close()
    if export.counts["Observation"] < observations:
        raise ValueError("the generator made fewer Observations than asked")
    if order == "time":
        _sort_by_time(export.observations)
    return export


def _sort_by_time(path: Path) -> None:
    """Rewrite an Observation NDJSON file in order of effective time (then id: stable)."""
    def key(line: bytes) -> tuple[str, str]:
        resource = orjson.loads(line)
        return str(resource.get("effectiveDateTime", "")), str(resource.get("id", ""))

    with path.open("rb") as fh:
        lines = sorted(fh, key=key)
    with path.open("wb") as fh:
        fh.writelines(lines)


def _write_participant(bundle: Json, writer: Any, handles: dict[str, IO[bytes]],
                       export: BulkExport, limit: int) -> None:
    mrn = next(e["resource"]["identifier"][0] for e in bundle["entry"]
               if e["resource"]["resourceType"] == "Patient")
    writer.writerow([mrn["system"], mrn["value"], _subject_of(bundle["entry"])])
    export.participants += 1
    for rtype, resource in _export_lines(bundle):
        if rtype == "Observation" and export.counts["Observation"] >= limit:
            continue
        handles[rtype].write(orjson.dumps(resource) + b"\n")
        export.counts[rtype] += 1


def read_enrollment(path: Path) -> list[tuple[str, str, str]]:
    """(system, value, subject) rows of an enrollment list written by ``write_bulk_export``."""
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    return [(r[0], r[1], r[2]) for r in rows[1:]]
