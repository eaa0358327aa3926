"""What the adapter takes and serves: its canonical base, resource types, search parameters.

One home for the names that the REST layer, the pipeline, validation and the result Bundle
all spell: a type added here is added everywhere it is listed.
"""

from __future__ import annotations

__all__ = [
    "CANONICAL_BASE",
    "ENROLLMENT_TYPES",
    "PARAMETER_TYPES",
    "PROCESSING_ORDER",
    "RESULT_SEARCH_PARAMS",
    "RESULT_TYPES",
    "STORED_TYPES",
    "VALIDATE_TYPES",
    "WRITE_TYPES",
]

#: Canonical base of everything the project defines (a name, not an address).
CANONICAL_BASE = "https://fhir-adapter.org/fhir"

#: Types a sender may create or update; the adapter keeps their resources (when enrolled).
WRITE_TYPES = ("Patient", "Observation", "MedicationAdministration", "Specimen", "ResearchSubject")
STORED_TYPES = frozenset(WRITE_TYPES)
#: Types ``$validate`` takes (a Bundle: each entry).
VALIDATE_TYPES = (*WRITE_TYPES, "Bundle")
#: Within a method of a transaction: the study, enrollment and patients before what is about
#: them (a ResearchStudy is answered, never stored: the adapter's own comes from study.toml).
PROCESSING_ORDER = ("ResearchStudy", "ResearchSubject", "Patient", "Specimen",
                    "MedicationAdministration", "Observation")
#: Enrollment is the gate every other entry passes: it is settled first.
ENROLLMENT_TYPES = frozenset({"ResearchStudy", "ResearchSubject"})

#: Types of the result Bundle, read and searched by research servers.
RESULT_TYPES = ("ResearchStudy", "PlanDefinition", "Patient", "ResearchSubject", "Observation",
                "MeasureReport", "Provenance")
#: Search parameters of the result types: name -> (FHIR search type, what it matches).
RESULT_SEARCH_PARAMS = {
    "_id": ("token", "the resource id"),
    "identifier": ("token", "system|value, |value or value"),
    "subject": ("reference", "the pseudonymous Patient (Patient/id or id)"),
    "patient": ("reference", "the pseudonymous Patient the resource is about (Patient/id or id)"),
    "code": ("token", "system|code or code"),
    "date": ("date", "effective[x], with the prefixes eq ne gt ge lt le"),
    "category": ("token", "system|code or code"),
    "status": ("token", "the status code"),
    "_lastUpdated": ("date", "with the prefixes gt, ge, lt, le, eq"),
}
#: The result types each parameter applies to (None: every one). A parameter given for a
#: type it does not apply to is unknown there (400, or ignored under handling=lenient).
PARAMETER_TYPES: dict[str, frozenset[str] | None] = {
    "_id": None, "_lastUpdated": None,
    "identifier": frozenset({"ResearchStudy", "PlanDefinition", "Patient", "ResearchSubject",
                             "Observation", "MeasureReport"}),
    "status": frozenset({"ResearchStudy", "PlanDefinition", "ResearchSubject", "Observation",
                         "MeasureReport"}),
    "subject": frozenset({"Observation"}),  # the summary MeasureReport is about the study
    "patient": frozenset({"Observation", "ResearchSubject"}),
    "code": frozenset({"Observation"}),
    "date": frozenset({"Observation"}),  # the summary's date is the moment it is made
    "category": frozenset({"Observation"}),
}
