"""The SDTM export fed from the store: participants read a batch at a time, their endpoints
computed as the results publish them, the elements of their stored resources beside them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from fhir_adapter.paths import mappings_dir
from fhir_adapter.publication import Publication
from fhir_adapter.sdtm import READ_ELEMENTS, ExportReport, SdtmTerms, SubjectData, export
from fhir_adapter.store.published import stored_elements

__all__ = ["export_sdtm", "sdtm_terms"]

#: Participants read from the store per unit of work (memory stays flat on large stores).
BATCH = 200


def sdtm_terms(folder: Path | None) -> SdtmTerms:
    return SdtmTerms.from_file((folder or mappings_dir()) / "sdtm.toml")


def subjects(publication: Publication, batch: int = BATCH) -> Iterator[SubjectData]:
    """Every participant, by subject code, with what the export reads of it."""
    store, recomputer = publication.store, publication.recomputer
    with store.read() as unit:
        codes = sorted(p.subject for p in unit.participants())
    for first in range(0, len(codes), batch):
        part = codes[first:first + batch]
        with store.read() as unit:
            records = unit.records(part)
            documents = {key: elements for kind, names in READ_ELEMENTS.items()
                         for key, elements in stored_elements(unit, kind, part, names).items()}
        for record in records:
            yield SubjectData(record, recomputer.readable_endpoints(record), documents)


def export_sdtm(publication: Publication, out: Path, fmt: str, *,
                mappings: Path | None = None) -> ExportReport:
    """DM, LB, EX, SV, TV, define.xml and metadata.json of every participant into ``out``."""
    return export(subjects(publication), out, fmt, study=publication.study,
                  catalogue=publication.recomputer.catalogue, terms=sdtm_terms(mappings),
                  secret=publication.key.for_reading(), created=publication.store.clock())
