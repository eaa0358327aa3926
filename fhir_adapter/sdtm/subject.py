"""What the export reads of one participant, and the context every domain builder shares."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fhir_adapter.sdtm.terms import SdtmTerms
from fhir_adapter.sdtm.timing import Schedule
from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition
from fhir_adapter.trial.model import ParticipantEndpoints, ParticipantRecord
from fhir_adapter.trial.visits import study_date

__all__ = ["READ_ELEMENTS", "Context", "Row", "SubjectData"]

#: What the export reads of the stored resources, by type (the rest is in the trial model).
READ_ELEMENTS: dict[str, tuple[str, ...]] = {
    "Observation": ("valueQuantity", "referenceRange"),
    "MedicationAdministration": ("effectivePeriod", "contained"),
}

LOINC = "http://loinc.org"
#: One dataset row: variable name -> value (str, int, Decimal text for decimals, or None).
Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SubjectData:
    """One participant as the adapter keeps it: the trial record, its endpoints as the results
    publish them, and the ``READ_ELEMENTS`` of its stored resources by adapter key
    (``Observation/<id>``, ``MedicationAdministration/<id>``): what the trial model does not
    carry (values and units as received, reference ranges, the end of an infusion, its lot)."""

    record: ParticipantRecord
    endpoints: ParticipantEndpoints
    documents: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return self.record.participant.subject


@dataclass(frozen=True, slots=True)
class Context:
    """The study, its catalogue and SDTM terms, the visit numbering and the LBSEQ source.

    ``sequence`` maps a stable key (an adapter key, or a derived row's key) to a keyed-hash
    number: the same key gives the same --SEQ in every export."""

    study: StudyDefinition
    catalogue: AnalyteCatalogue
    terms: SdtmTerms
    schedule: Schedule
    sequence: Callable[[str], int]
    #: (analyte key, accepted code) of the catalogue's LOINC codes: LBLOINC
    loinc: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def of(cls, study: StudyDefinition, catalogue: AnalyteCatalogue, terms: SdtmTerms,
           sequence: Callable[[str], int]) -> Context:
        loinc = frozenset((a.key, c.code) for a in catalogue.analytes.values()
                          for c in a.codes if c.system == LOINC)
        return cls(study, catalogue, terms, Schedule(study, terms.visit_names), sequence, loinc)

    @property
    def studyid(self) -> str:
        return self.study.id

    def usubjid(self, subject: str) -> str:
        """STUDYID-subject code: the subject code is the pseudonym results publish."""
        return f"{self.study.id}-{subject}"

    def day0_date(self, data: SubjectData) -> date | None:
        infusion = data.record.day0
        return study_date(infusion.at, self.study) if infusion else None
