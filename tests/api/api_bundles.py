"""Small hand-written FHIR R4 Bundles for the REST tests (hospital-side data, before mapping)."""

from __future__ import annotations

import uuid
from typing import Any

__all__ = ["HOSPITAL", "creatinine", "patient", "transaction"]

HOSPITAL = "urn:oid:1.2.3.4.5.6"  # the hospital's MRN system in these tests
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def patient(mrn: str, *, family: str = "Testperson") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": HOSPITAL, "value": mrn}],
        "name": [{"family": family, "given": ["Ann"]}],
        "gender": "female",
        "birthDate": "2012-03-04",
    }


def creatinine(subject: str, value: float, when: str, *, unit: str = "mg/dL",
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


def transaction(*resources: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
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
