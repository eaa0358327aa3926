"""Hand-made trial results and the hospital Observations they derive from (full of identifiers)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from fhir_adapter.trial.model import (
    Infusion,
    Measurement,
    Participant,
    ParticipantEndpoints,
    ParticipantRecord,
    ParticipantResult,
    StudySummary,
    VisitResult,
)

BASE = "https://fhir-adapter.org/fhir"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
V3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
KEY = b"a secret of the adapter, 32 byte"

#: The injected clock: Pacific/Chatham (+13:45 in January), so that a UTC assumption shows.
NOW = datetime(2025, 1, 15, 10, 30, tzinfo=ZoneInfo("Pacific/Chatham"))

SUBJECT = "NCT02382874-1"
NO_INFUSION_SUBJECT = "NCT02382874-2"
#: Day 0: 2024-03-20 06:00 UTC = 09:30 in Tehran.
DAY0 = datetime(2024, 3, 20, 6, 0, tzinfo=UTC)

#: What identifies the person at the hospital: none of it may leave in a result Bundle.
HOSPITAL_PATIENT_ID = "hosp-pat-81723"
NAME_GIVEN, NAME_FAMILY = "Shirin", "Farahani"
MRN = "MRN-5550123"
BIRTH_DATE = "2014-05-02"
ADDRESS_LINE, CITY, POSTAL = "12 Valiasr Street", "Tajrish-North", "1965713411"
PHONE, EMAIL = "+98-21-5550-1234", "shirin.farahani@example.org"
PRACTITIONER = "Kaveh Rostami"
SECRETS = [
    HOSPITAL_PATIENT_ID,
    NAME_GIVEN,
    NAME_FAMILY,
    MRN,
    BIRTH_DATE,
    ADDRESS_LINE,
    CITY,
    POSTAL,
    PHONE,
    EMAIL,
    PRACTITIONER,
    "enc-5531",
    "spec-9001",
    "dr-77",
    "ACC-",
    "lab-obs-",
    "HIS-42",
]


def adapter_key(n: int) -> str:
    """An adapter key as the store assigns them: ``Observation/<uuid4 hex>``."""
    return f"Observation/{uuid.UUID(int=(0x5A17 << 112) + n, version=4).hex}"


CR_BL, CR_W2, ALT_BL, ALT_W2 = (adapter_key(n) for n in (1, 2, 3, 4))
PROT_BL, PROT_M3, HEIGHT, WEIGHT = (adapter_key(n) for n in (5, 6, 7, 8))
IL2_BL, IL2_H12, TREG_BL, TREG_W1 = (adapter_key(n) for n in (9, 10, 11, 12))
EGFR_LAB_W2 = adapter_key(13)

#: adapter key -> (LOINC or local code, value, UCUM unit, time)
_SOURCES: dict[str, tuple[str, str, str, str]] = {
    CR_BL: ("14682-9", "88.4", "umol/L", "2024-03-10T08:00:00+03:30"),
    CR_W2: ("2160-0", "0.9", "mg/dL", "2024-04-03T09:00:00+03:30"),
    ALT_BL: ("1742-6", "30", "U/L", "2024-03-10T08:00:00+03:30"),
    ALT_W2: ("1742-6", "95", "U/L", "2024-04-03T09:00:00+03:30"),
    PROT_BL: ("2889-4", "4", "g/(24.h)", "2024-03-12T08:00:00+03:30"),
    PROT_M3: ("2889-4", "250", "mg/(24.h)", "2024-06-18T08:00:00+03:30"),
    HEIGHT: ("8302-2", "1.30", "m", "2024-06-01T10:00:00+03:30"),
    WEIGHT: ("29463-7", "28", "kg", "2024-06-01T10:00:00+03:30"),
    IL2_BL: ("33939-0", "10", "pg/mL", "2024-03-10T08:00:00+03:30"),
    IL2_H12: ("33939-0", "5", "pg/mL", "2024-03-20T21:30:00+03:30"),
    TREG_BL: ("treg-pct-cd4", "4.1", "%", "2024-03-10T08:00:00+03:30"),
    TREG_W1: ("treg-pct-cd4", "6.2", "%", "2024-03-27T09:30:00+03:30"),
    EGFR_LAB_W2: ("33914-3", "61", "mL/min/{1.73_m2}", "2024-04-03T09:00:00+03:30"),
}


def hospital_observation(key: str, n: int) -> dict[str, Any]:
    """A stored Observation as a hospital sent it: ids, identifiers, people, free text."""
    code, value, unit, when = _SOURCES[key]
    system = LOINC if code[0].isdigit() else f"{BASE}/CodeSystem/analyte"
    quantity: dict[str, Any] = {"value": float(value), "unit": unit, "system": UCUM, "code": unit}
    if key == IL2_H12:
        quantity["comparator"] = "<"
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"lab-obs-{n:04d}",
        "meta": {"versionId": "3", "source": "http://lab.hospital.example/HIS-42"},
        "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{NAME_GIVEN} {NAME_FAMILY}</div>',
        },
        "contained": [
            {
                "resourceType": "Patient",
                "id": "p1",
                "name": [{"family": NAME_FAMILY, "given": [NAME_GIVEN]}],
                "birthDate": BIRTH_DATE,
            }
        ],
        "extension": [{"url": "http://hospital.example/fhir/address", "valueString": ADDRESS_LINE}],
        "identifier": [{"system": "urn:oid:1.2.364.1.5", "value": f"ACC-2024-{n:05d}"}],
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                        "extension": [{"url": "http://hospital.example/mrn", "valueString": MRN}],
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": system, "code": code, "id": f"lab-obs-code-{n}"}]},
        "subject": {
            "reference": f"Patient/{HOSPITAL_PATIENT_ID}",
            "display": f"{NAME_GIVEN} {NAME_FAMILY}",
            "identifier": {"system": "http://hospital.example/mrn", "value": MRN},
        },
        "encounter": {"reference": "Encounter/enc-5531"},
        "effectiveDateTime": when,
        "issued": "2024-06-30T12:00:00+03:30",
        "performer": [{"reference": "Practitioner/dr-77", "display": PRACTITIONER}],
        "valueQuantity": quantity,
        "note": [{"text": f"called {NAME_GIVEN} at {PHONE}, {EMAIL}, {CITY} {POSTAL}"}],
        "specimen": {"reference": "Specimen/spec-9001"},
    }
    if code in ("1742-6", "1920-8"):
        resource["referenceRange"] = [
            {
                "high": {"value": 40, "unit": "U/L", "system": UCUM, "code": "U/L"},
                "extension": [{"url": "http://hospital.example/dob", "valueDate": BIRTH_DATE}],
            }
        ]
    return resource


def hand_sources() -> dict[str, dict[str, Any]]:
    return {key: hospital_observation(key, n) for n, key in enumerate(_SOURCES, start=1)}


def hospital_patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": HOSPITAL_PATIENT_ID,
        "identifier": [{"system": "http://hospital.example/mrn", "value": MRN}],
        "name": [{"family": NAME_FAMILY, "given": [NAME_GIVEN]}],
        "gender": "female",
        "birthDate": BIRTH_DATE,
        "address": [{"line": [ADDRESS_LINE], "city": CITY, "postalCode": POSTAL}],
        "telecom": [{"system": "phone", "value": PHONE}, {"system": "email", "value": EMAIL}],
    }


def t(text: str) -> datetime:
    return datetime.fromisoformat(text)


def D(text: str) -> Decimal:  # noqa: N802 - reads like the literal it builds
    return Decimal(text)


CREATININE_W2 = VisitResult(
    SUBJECT, "serum-creatinine", "creatinine", "W2", D("0.9"), "mg/dL", t(_SOURCES[CR_W2][3]),
    baseline=D("1.0"), change=D("-0.1"), percent_change=D("-10.00"), interpretation="D",
    sources=(CR_W2, CR_BL),
)  # fmt: skip
ALT_W2_RESULT = VisitResult(
    SUBJECT, "liver-function", "alt", "W2", D("95"), "U/L", t(_SOURCES[ALT_W2][3]),
    baseline=D("30"), change=D("65"), percent_change=D("216.67"), uln=D("40"),
    fold_uln=D("2.38"), ctcae_grade=1, sources=(ALT_W2, ALT_BL),
)  # fmt: skip
PROTEIN_M3 = VisitResult(
    SUBJECT, "proteinuria", "urine-protein-24h", "M3", D("250"), "mg/(24.h)",
    t(_SOURCES[PROT_M3][3]), baseline=D("4000"), change=D("-3750"),
    percent_change=D("-93.75"), remission="complete", protein_rate_bsa=D("5.45"),
    upcr=D("0.31"), sources=(PROT_M3, PROT_BL, HEIGHT, WEIGHT),
)  # fmt: skip
EGFR_W2 = VisitResult(
    SUBJECT, "renal-function", "egfr-computed", "W2", D("59.7"), "mL/min/{1.73_m2}",
    t(_SOURCES[CR_W2][3]), baseline=D("53.7"), change=D("6.0"), percent_change=D("11.11"),
    egfr_method="bedside-schwartz", sources=(CR_W2, CR_BL, HEIGHT),
)  # fmt: skip
IL2_CENSORED = VisitResult(
    SUBJECT, "anti-inflammatory", "il2", "H12", D("5"), "pg/mL", t(_SOURCES[IL2_H12][3]),
    comparator="<", baseline=D("10"), sources=(IL2_H12, IL2_BL),
)  # fmt: skip
TREG_W1_RESULT = VisitResult(
    SUBJECT, "treg", "treg-pct-cd4", "W1", D("6.2"), "%", t(_SOURCES[TREG_W1][3]),
    baseline=D("4.1"), change=D("2.1"), percent_change=D("51.22"), fold_change=D("1.512"),
    sources=(TREG_W1, TREG_BL),
)  # fmt: skip
VISIT_RESULTS = [CREATININE_W2, ALT_W2_RESULT, PROTEIN_M3, EGFR_W2, IL2_CENSORED, TREG_W1_RESULT]

CATEGORY_W2 = ParticipantResult(SUBJECT, "creatinine-category-w2", "D", 9, (CREATININE_W2.key,))
LIVER_W2 = ParticipantResult(SUBJECT, "liver-enzyme-increase-w2", True, 9, (ALT_W2_RESULT.key,))
MAX_ALT = ParticipantResult(SUBJECT, "max-ctcae-grade-alt", 1, 9, (ALT_W2_RESULT.key,))
BEST = ParticipantResult(SUBJECT, "proteinuria-best-response", "complete", 9, (PROTEIN_M3.key,))
NO_INFUSION = ParticipantResult(NO_INFUSION_SUBJECT, "no-infusion", True)


def hand_endpoints() -> list[ParticipantEndpoints]:
    return [
        ParticipantEndpoints(SUBJECT, list(VISIT_RESULTS), [CATEGORY_W2, LIVER_W2, MAX_ALT, BEST]),
        ParticipantEndpoints(NO_INFUSION_SUBJECT, [], [NO_INFUSION]),
    ]


def participants() -> list[Participant]:
    return [
        Participant(SUBJECT, "female", datetime(2014, 5, 2).date()),
        Participant(NO_INFUSION_SUBJECT, "male", datetime(2009, 1, 1).date()),
    ]


def records() -> list[ParticipantRecord]:
    """The records behind the hand-made results (Day 0 and the lab-reported eGFR)."""
    egfr_lab = Measurement(
        EGFR_LAB_W2, "egfr-reported", D("61"), "mL/min/{1.73_m2}", t(_SOURCES[EGFR_LAB_W2][3])
    )
    infusion = Infusion("MedicationAdministration/" + "c" * 32, DAY0, "completed")
    return [
        ParticipantRecord(participants()[0], [infusion], [egfr_lab]),
        ParticipantRecord(participants()[1], [], []),
    ]


def hand_summary() -> StudySummary:
    return StudySummary(
        population={"creatinine-category-w2": 1, "liver-enzyme-increase-w2": 1, "no-infusion": 1},
        counts={
            "creatinine-category-w2": {"D": 1, "N": 0, "U": 0},
            "liver-enzyme-increase-w2": {"true": 1, "false": 0},
            "no-infusion": {"true": 1},
        },
        medians={"creatinine.W2": D("-0.1"), "creatinine.M12": None},
        participants_with_value={"serum-creatinine": 1, "liver-function": 1},
    )


def day0_plus(days: float) -> datetime:
    return DAY0 + timedelta(days=days)
