"""Small hand-written FHIR Bundles for the pipeline and command-line tests."""

from __future__ import annotations

import copy
from typing import Any

MRN = "https://hospital.example.org/mrn"
LAB = "https://hospital.example.org/lab"
PATIENT_URL = "urn:uuid:5f0e6a52-1f53-4c44-9d4a-0c1b3c2d4e01"
PRODUCT = "https://fhir-adapter.org/fhir/CodeSystem/product"


def entry(resource: dict[str, Any], full_url: str, method: str = "POST",
          url: str | None = None) -> dict[str, Any]:
    return {"fullUrl": full_url, "resource": resource,
            "request": {"method": method, "url": url or resource["resourceType"]}}


def patient(mrn: str = "1001") -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": MRN, "value": mrn}],
            "gender": "female", "birthDate": "2014-05-02"}


def research_subject(code: str = "S-01", status: str = "on-study",
                     individual: str = PATIENT_URL) -> dict[str, Any]:
    return {"resourceType": "ResearchSubject", "status": status,
            "identifier": [{"system": "https://hospital.example.org/subject", "value": code}],
            "study": {"identifier": {"system": "https://clinicaltrials.gov",
                                     "value": "NCT02382874"}},
            "individual": {"reference": individual}}


def infusion(at: str = "2024-03-10T09:00:00+03:30") -> dict[str, Any]:
    return {"resourceType": "MedicationAdministration", "status": "completed",
            "identifier": [{"system": LAB, "value": "MA-1"}],
            "medicationCodeableConcept": {"coding": [{"system": PRODUCT, "code": "ad-msc"}]},
            "subject": {"reference": PATIENT_URL}, "effectiveDateTime": at,
            "dosage": {"route": {"text": "intravenous"},
                       "dose": {"value": 1.0, "unit": "10*6/kg",
                                "system": "http://unitsofmeasure.org", "code": "10*6/kg"}}}


def creatinine(accession: str, value: float, unit: str = "umol/L", *, status: str = "final",
               at: str = "2024-03-24T08:00:00+03:30", subject: str = PATIENT_URL,
               code: str = "14682-9") -> dict[str, Any]:
    return {"resourceType": "Observation", "status": status,
            "identifier": [{"system": LAB, "value": accession}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": subject}, "effectiveDateTime": at,
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org",
                              "code": unit}}


def transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def enrolled_bundle(*observations: dict[str, Any]) -> dict[str, Any]:
    """A participant (ResearchSubject + Patient), the infusion and the given Observations."""
    entries = [
        entry(patient(), PATIENT_URL),
        entry(research_subject(), "urn:uuid:5f0e6a52-1f53-4c44-9d4a-0c1b3c2d4e02"),
        entry(infusion(), "urn:uuid:5f0e6a52-1f53-4c44-9d4a-0c1b3c2d4e03"),
    ]
    for n, obs in enumerate(observations):
        entries.append(entry(obs, f"urn:uuid:5f0e6a52-1f53-4c44-9d4a-0c1b3c2d5{n:03d}"))
    return transaction(*copy.deepcopy(entries))
