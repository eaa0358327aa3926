"""Small hand-written FHIR R4 resources and Bundles (hospital-side data, before mapping).

Two families: the pipeline's (a participant in a transaction, ``enrolled_bundle``; fixed
fullUrls so that entries can name each other) and the REST tests' (``hospital_patient``,
``lab_creatinine``, ``linked_bundle``: fresh urn:uuid fullUrls, ``{ref:N}`` names entry N).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

__all__ = [
    "HOSPITAL", "LAB", "MRN", "PATIENT_URL", "PRODUCT", "creatinine", "enrolled_bundle", "entry",
    "hospital_patient", "infusion", "lab_creatinine", "linked_bundle", "patient",
    "research_subject", "transaction",
]

MRN = "https://hospital.example.org/mrn"
LAB = "https://hospital.example.org/lab"
PATIENT_URL = "urn:uuid:5f0e6a52-1f53-4c44-9d4a-0c1b3c2d4e01"
PRODUCT = "https://fhir-adapter.org/fhir/CodeSystem/product"
HOSPITAL = "urn:oid:1.2.3.4.5.6"  # the hospital's MRN system of the REST tests
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


# -- the pipeline's ------------------------------------------------------------------------------
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


# -- the REST tests' -----------------------------------------------------------------------------
def hospital_patient(mrn: str, *, family: str = "Testperson") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": HOSPITAL, "value": mrn}],
        "name": [{"family": family, "given": ["Ann"]}],
        "gender": "female",
        "birthDate": "2012-03-04",
    }


def lab_creatinine(subject: str, value: float, when: str, *, unit: str = "mg/dL",
               ident: str | None = None) -> dict[str, Any]:
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": "2160-0",
                             "display": "Creatinine [Mass/volume] in Serum or Plasma"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }
    if ident:
        observation["identifier"] = [{"system": "urn:oid:1.2.3.4.5.7", "value": ident}]
    return observation


def linked_bundle(*resources: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    """A Bundle with urn:uuid fullUrls; ``{ref:N}`` in a reference names entry N."""
    urls = [f"urn:uuid:{uuid.uuid4()}" for _ in resources]
    entries = []
    for url, resource in zip(urls, resources, strict=True):
        subject = resource.get("subject", {}).get("reference", "")
        if subject.startswith("{ref:"):
            resource["subject"]["reference"] = urls[int(subject[5:-1])]
        entry: dict[str, Any] = {"fullUrl": url, "resource": resource}
        if kind in ("transaction", "batch"):
            entry["request"] = {"method": "POST", "url": resource["resourceType"]}
        entries.append(entry)
    return {"resourceType": "Bundle", "type": kind, "entry": entries}
