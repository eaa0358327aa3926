"""FHIR resources -> the trial model, driven by the data of mappings/ (analytes, sites)."""

from __future__ import annotations

from fhir_adapter.mapping.enrollment import check_subject_code, patient_identifiers
from fhir_adapter.mapping.facts import PatientFacts, SubjectFacts, Unmapped
from fhir_adapter.mapping.mapper import Mapper
from fhir_adapter.mapping.times import place

__all__ = [
    "Mapper",
    "check_subject_code",
    "patient_identifiers",
    "PatientFacts",
    "SubjectFacts",
    "Unmapped",
    "place",
]
