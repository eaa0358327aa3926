"""The SDTM export: participants in, one file per domain and the metadata file out."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fhir_adapter.errors import UnusableInput
from fhir_adapter.sdtm.define import DEFINE_FILE, define_xml
from fhir_adapter.sdtm.design import dm_row, ex_rows, sv_rows, tv_rows
from fhir_adapter.sdtm.formats import DATASET_JSON_VERSION, FORMATS, DatasetWriter, writer_for
from fhir_adapter.sdtm.lb import lb_rows
from fhir_adapter.sdtm.metadata import metadata
from fhir_adapter.sdtm.subject import Context, SubjectData
from fhir_adapter.sdtm.terms import SdtmTerms
from fhir_adapter.sdtm.variables import DOMAINS
from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition
from fhir_adapter.version import __version__

__all__ = ["ExportReport", "export", "sequence_of"]

METADATA_FILE = "metadata.json"
#: --SEQ values are below this bound: exact in an 8-byte float (XPT), short enough to read.
SEQ_BOUND = 10**9


def sequence_of(secret: bytes) -> Callable[[str], int]:
    """The --SEQ of a stable key: a keyed hash (BLAKE2b keyed with the pseudonym key) of the
    key, below ``SEQ_BOUND``. The same key gives the same number in every export; without the
    key the number says nothing of the hospital's ids."""

    keyed = hashlib.blake2b(key=secret[:64], digest_size=8, person=b"sdtm-seq")

    def sequence(key: str) -> int:
        digest = keyed.copy()
        digest.update(key.encode())
        return int.from_bytes(digest.digest(), "big") % (SEQ_BOUND - 1) + 1

    return sequence


@dataclass
class ExportReport:
    """What one export wrote: the files, and the rows per domain."""

    files: list[Path] = field(default_factory=list)
    records: dict[str, int] = field(default_factory=dict)


def export(subjects: Iterable[SubjectData], out: Path, fmt: str, *, study: StudyDefinition,
           catalogue: AnalyteCatalogue, terms: SdtmTerms, secret: bytes,
           created: datetime) -> ExportReport:
    """Write DM, LB, EX, SV and TV of these participants (in the order given, one at a time)
    into ``out`` as ``fmt``, and ``metadata.json`` and ``define.xml`` describing them."""
    if fmt not in FORMATS:
        raise UnusableInput(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UnusableInput(f"cannot write {out}: {exc.strerror or exc}") from exc
    ctx = Context.of(study, catalogue, terms, sequence_of(secret))
    stamp = created.astimezone(study.timezone).isoformat(timespec="seconds")

    def header(domain: str) -> Callable[[int, list[dict[str, Any]]], dict[str, Any]]:
        def make(records: int, columns: list[dict[str, Any]]) -> dict[str, Any]:
            return _header(study, domain, DOMAINS[domain].label, stamp, records, columns)
        return make

    writers: dict[str, DatasetWriter] = {
        name: writer_for(fmt, domain, out, header(name)) for name, domain in DOMAINS.items()}
    for data in subjects:
        lb = lb_rows(ctx, data)
        writers["DM"].add(dm_row(ctx, data, lb))
        for row in lb:
            writers["LB"].add(row)
        for row in ex_rows(ctx, data):
            writers["EX"].add(row)
        for row in sv_rows(ctx, data, lb):
            writers["SV"].add(row)
    for row in tv_rows(ctx):
        writers["TV"].add(row)
    report = ExportReport()
    for name, writer in writers.items():
        report.files.append(writer.close())
        report.records[name] = writer.records
    described = metadata(study, terms, fmt, stamp, writers)
    path = out / METADATA_FILE
    path.write_text(json.dumps(described, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    report.files.append(path)
    path = out / DEFINE_FILE
    path.write_bytes(define_xml(study, terms, stamp, writers))
    report.files.append(path)
    return report


def _header(study: StudyDefinition, domain: str, label: str, stamp: str, records: int,
            columns: list[dict[str, Any]]) -> dict[str, Any]:
    """The top-level attributes in the order of Dataset-JSON v1.1 ("Top-level Metadata
    Attributes": creation time, version, fileOID, ..., itemGroupOID, records, name, label,
    columns; rows follow)."""
    sponsor = study.sponsor
    head: dict[str, Any] = {
        "datasetJSONCreationDateTime": stamp,
        "datasetJSONVersion": DATASET_JSON_VERSION,
        "fileOID": f"{study.id}.SDTM.{domain}",
    }
    if sponsor:
        head["originator"] = sponsor
    head |= {
        "sourceSystem": {"name": "fhir-adapter", "version": __version__},
        "studyOID": study.id,
        "metaDataRef": METADATA_FILE,
        "itemGroupOID": f"IG.{domain}",
        "records": records,
        "name": domain,
        "label": label,
        "columns": columns,
    }
    return head
