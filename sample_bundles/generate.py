#!/usr/bin/env python3
"""Make the synthetic sample Bundles of trial NCT02382874 (TRIAL.md section 7) from a fixed seed.

Standard library only, and no import of the adapter: this script is an independent source of
truth. ``python sample_bundles/generate.py [--out DIR] [--seed N]`` writes one transaction
Bundle per participant (``p1-FSGS-01.json`` ...), a later Bundle of corrections
(``zz-corrections.json``) and ``plan.json``, the plain list of every generated input.
``make_bundles`` makes inputs of any size for benchmarks.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_SEED", "PROFILES", "Profile", "main", "make_bundles", "make_samples",
           "write_samples"]

DEFAULT_SEED = 2382874
TEHRAN = timezone(timedelta(hours=3, minutes=30))
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
LOCAL = "https://fhir-adapter.org/fhir/CodeSystem/analyte"
PRODUCT = "https://fhir-adapter.org/fhir/CodeSystem/product"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
STUDY_SYSTEM, STUDY_ID = "https://clinicaltrials.gov", "NCT02382874"
HOSPITAL = "https://hospital.example.org/fhir/sid"
MRN_SYSTEM = f"{HOSPITAL}/mrn"
LAB_SYSTEM = f"{HOSPITAL}/lab-accession"
REFLAB_SYSTEM = "https://reference-lab.example.org/fhir/sid/accession"
SUBJECT_SYSTEM = f"{HOSPITAL}/trial-subject"
CORRECTIONS_FILE = "zz-corrections.json"
Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Test:
    """One laboratory test as the hospital codes it: the analyte it measures, code, unit."""

    analyte: str
    system: str
    code: str
    display: str
    unit: str
    unit_text: str
    places: int
    category: str = "laboratory"


def _loinc(analyte: str, code: str, display: str, unit: str, text: str, places: int,
           category: str = "laboratory") -> Test:
    return Test(analyte, LOINC, code, display, unit, text, places, category)


TESTS: dict[str, Test] = {
    "creatinine": _loinc("creatinine", "2160-0", "Creatinine [Mass/volume] in Serum or Plasma",
                         "mg/dL", "mg/dL", 2),
    "creatinine-si": _loinc("creatinine", "14682-9",
                            "Creatinine [Moles/volume] in Serum or Plasma", "umol/L", "umol/L", 0),
    "urea": _loinc("urea", "3091-6", "Urea [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL", 0),
    "bun": _loinc("urea", "3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma",
                  "mg/dL", "mg/dL", 1),
    "urine-protein-24h": _loinc("urine-protein-24h", "2889-4",
                                "Protein [Mass/time] in 24 hour Urine", "mg/(24.h)", "mg/24 h", 0),
    "urine-protein-24h-g": _loinc("urine-protein-24h", "2889-4",
                                  "Protein [Mass/time] in 24 hour Urine", "g/(24.h)", "g/24 h", 3),
    "upcr": _loinc("upcr", "2890-2", "Protein/Creatinine [Mass Ratio] in Urine",
                   "mg/mg", "mg/mg", 2),
    "alt": _loinc("alt", "1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in "
                  "Serum or Plasma", "U/L", "U/L", 0),
    "ast": _loinc("ast", "1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in "
                  "Serum or Plasma", "U/L", "U/L", 0),
    "albumin": _loinc("albumin", "1751-7", "Albumin [Mass/volume] in Serum or Plasma",
                      "g/dL", "g/dL", 1),
    "il2": _loinc("il2", "33939-0", "Interleukin 2 [Mass/volume] in Serum or Plasma",
                  "pg/mL", "pg/mL", 1),
    "il10": _loinc("il10", "26848-2", "Interleukin 10 [Mass/volume] in Serum or Plasma",
                   "pg/mL", "pg/mL", 1),
    "treg-pct-cd4": Test("treg-pct-cd4", LOCAL, "treg-pct-cd4",
                         "Regulatory T cells (CD4+CD25+FOXP3+) / CD4+ T cells", "%", "%", 1),
    "treg-abs": Test("treg-abs", LOCAL, "treg-abs",
                     "Regulatory T cells (CD4+CD25+FOXP3+) [#/volume] in Blood", "/uL",
                     "cells/uL", 0),
    "egfr-reported": _loinc("egfr-reported", "50384-7", "eGFR Schwartz",
                            "mL/min/{1.73_m2}", "mL/min/1.73 m2", 0),
    "height": _loinc("height", "8302-2", "Body height", "cm", "cm", 1, "vital-signs"),
    "weight": _loinc("weight", "29463-7", "Body weight", "kg", "kg", 1, "vital-signs"),
}

# The protocol schedule: (visit, nominal day, jitter range in days). BL and H12 are special.
MONTHS = tuple((f"M{m}", 30 * m) for m in range(2, 12)) + (("M12", 365),)
SCHEDULE: tuple[tuple[str, int], ...] = (("BL", 0), ("H12", 0), ("W1", 7), ("W2", 14),
                                         ("W4", 28)) + MONTHS
JITTER = {"W1": (-1, 2), "W2": (-2, 2), "M12": (-5, 5)}
CYTOKINE_VISITS = frozenset({"BL", "H12", "W4"} | {code for code, _ in MONTHS})
TREG_VISITS = frozenset({"BL", "H12", "W1", "M3", "M6", "M12"})
EGFR_VISITS = frozenset({"BL", "W2", "M6", "M12"})
VITAL_VISITS = frozenset({"BL", "W4", "M3", "M6", "M9", "M12"})
SCREENING = frozenset({"creatinine", "urea", "urine-protein-24h", "upcr", "albumin"})
REFERENCE_LAB = frozenset({"il2", "il10", "treg-pct-cd4", "treg-abs"})
PANEL = ("creatinine", "urea", "urine-protein-24h", "upcr", "albumin", "alt", "ast", "il2",
         "il10", "treg-pct-cd4", "treg-abs", "egfr-reported")
Anchors = tuple[tuple[int, str], ...]
DEFAULT_ANCHORS: dict[str, Anchors] = {
    "urea": ((0, "28"), (365, "24")),
    "albumin": ((0, "2.3"), (90, "2.9"), (365, "3.3")),
    "alt": ((0, "21"),),
    "ast": ((0, "27"),),
    "il2": ((0, "5.4"), (1, "3.6"), (365, "4.1")),
    "il10": ((0, "4.2"), (1, "9.6"), (90, "7.2"), (365, "5.6")),
    "treg-pct-cd4": ((0, "4.1"), (1, "6.2"), (180, "5.5"), (365, "5.0")),
    "treg-abs": ((0, "31"), (1, "49"), (365, "41")),
}


@dataclass(frozen=True)
class Profile:
    """What one synthetic participant is meant to show (values keyed by analyte and visit)."""

    intent: str
    sex: str
    age: int
    height: str
    weight: str
    anchors: dict[str, Anchors]
    variants: dict[str, str] = field(default_factory=dict)
    fixed: dict[tuple[str, str], str] = field(default_factory=dict)
    censored: dict[tuple[str, str], str] = field(default_factory=dict)
    uln: dict[str, str] = field(default_factory=dict)
    vitals: frozenset[str] = VITAL_VISITS
    missed: frozenset[str] = frozenset()
    shifted: dict[str, int] = field(default_factory=dict)
    protein_g: frozenset[str] = frozenset()
    amend: dict[tuple[str, str], str] = field(default_factory=dict)
    withdraw: frozenset[tuple[str, str]] = frozenset()
    screening: bool = False
    late_h12_specimen: bool = False
    reference_lab: bool = False
    study_by_identifier: bool = False


PROFILES: tuple[Profile, ...] = (
    Profile(
        "complete remission; IL-2 censored at M2; creatinine at W2 amended later "
        "(0.54 -> 0.47 mg/dL); screening values at day -21 before the baseline",
        "female", 9, "128.0", "26.0",
        anchors={"creatinine": ((0, "0.55"), (365, "0.52")),
                 "urine-protein-24h": ((-21, "2900"), (0, "2600"), (7, "2300"), (14, "1900"),
                                       (28, "1400"), (60, "900"), (90, "520"), (120, "280"),
                                       (180, "180"), (270, "140"), (365, "110")),
                 "albumin": ((0, "2.1"), (90, "3.4"), (365, "4.0"))},
        fixed={("creatinine", "SCR"): "0.61", ("creatinine", "BL"): "0.55",
               ("creatinine", "W2"): "0.54", ("urine-protein-24h", "SCR"): "2900",
               ("urine-protein-24h", "BL"): "2600", ("alt", "BL"): "18", ("alt", "W2"): "24",
               ("ast", "BL"): "26", ("ast", "W2"): "29", ("il2", "M2"): "0.8"},
        censored={("il2", "M2"): "<"}, uln={"alt": "35", "ast": "45"},
        amend={("creatinine", "W2"): "0.47"}, screening=True),
    Profile(
        "partial remission with BSA known (W4 and M2 stay none: above 40 mg/(m2.h)); "
        "creatinine exactly -10 % at W2; some 24 h protein in g/(24.h); M12 protein "
        "entered-in-error later; ALT/AST without referenceRange",
        "male", 6, "116.0", "21.5",
        anchors={"creatinine": ((0, "0.50"), (365, "0.48")),
                 "urine-protein-24h": ((0, "3000"), (7, "2700"), (14, "2200"), (28, "1100"),
                                       (60, "900"), (90, "700"), (120, "650"), (150, "600"),
                                       (180, "560"), (240, "600"), (270, "620"), (300, "580"),
                                       (330, "560"), (365, "540"))},
        fixed={("creatinine", "BL"): "0.50", ("creatinine", "W2"): "0.45",
               ("urine-protein-24h", "BL"): "3000", ("urine-protein-24h", "W4"): "1100",
               ("urine-protein-24h", "M2"): "900", ("urine-protein-24h", "M3"): "700",
               ("alt", "BL"): "20", ("alt", "W2"): "27"},
        protein_g=frozenset({"M6", "M7", "M8", "M9", "M10", "M11"}),
        withdraw=frozenset({("urine-protein-24h", "M12")})),
    Profile(
        "no remission; creatinine in umol/L (14682-9), decreased at W2; ALT (and AST) "
        "increase of grade 1 at W2; height and weight only at BL and M12",
        "female", 12, "146.0", "38.0",
        anchors={"creatinine": ((0, "62"), (365, "66")),
                 "urine-protein-24h": ((0, "4200"), (14, "3900"), (60, "4600"), (120, "2300"),
                                       (180, "4100"), (365, "4400"))},
        variants={"creatinine": "creatinine-si"},
        fixed={("creatinine", "BL"): "62", ("creatinine", "W2"): "53",
               ("urine-protein-24h", "BL"): "4200", ("urine-protein-24h", "M4"): "2300",
               ("alt", "BL"): "21", ("alt", "W2"): "92", ("ast", "BL"): "27",
               ("ast", "W2"): "52"},
        uln={"alt": "35", "ast": "45"}, vitals=frozenset({"BL", "M12"})),
    Profile(
        "abnormal ALT at baseline (68 U/L, ULN 35): W2 grade 0, M3 grade 1; urea reported "
        "as BUN (3094-0); creatinine increased at W2; visit M7 missed",
        "male", 3, "95.5", "14.2",
        anchors={"creatinine": ((0, "0.32"), (365, "0.30")), "urea": ((0, "12"), (365, "11")),
                 "urine-protein-24h": ((0, "1900"), (14, "1600"), (28, "1300"), (90, "950"),
                                       (180, "800"), (270, "700"), (300, "620"), (330, "540"),
                                       (365, "640"))},
        variants={"urea": "bun"},
        fixed={("creatinine", "BL"): "0.32", ("creatinine", "W2"): "0.36",
               ("urine-protein-24h", "BL"): "1900", ("alt", "BL"): "68",
               ("alt", "W2"): "80", ("alt", "M3"): "110", ("ast", "BL"): "33",
               ("ast", "W2"): "35"},
        uln={"alt": "35", "ast": "45"}, missed=frozenset({"M7"})),
    Profile(
        "M5 drawn on day 160, outside every window; H12 creatinine with a Specimen collected "
        "at +17.5 h while effectiveDateTime says +18.75 h; cytokines and Treg from a "
        "reference lab, times in Z; creatinine unchanged at W2",
        "female", 13, "154.0", "44.0",
        anchors={"creatinine": ((0, "0.78"), (365, "0.76")),
                 "urine-protein-24h": ((0, "2200"), (14, "2000"), (60, "1700"), (120, "1400"),
                                       (180, "1300"), (365, "1150"))},
        fixed={("creatinine", "BL"): "0.78", ("creatinine", "W2"): "0.80",
               ("urine-protein-24h", "BL"): "2200", ("alt", "BL"): "16", ("alt", "W2"): "19"},
        shifted={"M5": 160}, late_h12_specimen=True, reference_lab=True,
        study_by_identifier=True),
)


def _q(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _num(value: Decimal) -> int | float:
    """The JSON number of a decimal (its shortest form: float repr round-trips it exactly)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _txt(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _when(instant: datetime, zulu: bool = False) -> str:
    if zulu:
        return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return instant.astimezone(TEHRAN).isoformat(timespec="seconds")


@lru_cache(maxsize=256)
def _points(anchors: Anchors) -> tuple[tuple[Decimal, Decimal], ...]:
    return tuple((Decimal(d), Decimal(v)) for d, v in anchors)


def _interp(anchors: Anchors, day: Decimal) -> Decimal:
    points = _points(anchors)
    if day <= points[0][0]:
        return points[0][1]
    for (d0, v0), (d1, v1) in zip(points, points[1:], strict=False):
        if day <= d1:
            return v0 + (v1 - v0) * (day - d0) / (d1 - d0)
    return points[-1][1]


@dataclass(frozen=True, slots=True)
class Visit:
    code: str
    day: Decimal  # the day the trajectories are read at
    at: datetime  # when the blood was drawn


@dataclass
class _Built:
    bundle: Json
    plan: Json
    corrections: list[tuple[Json, Json]]  # (entry, plan correction); the plan value gets it


class _Participant:
    """Builds one participant's Bundle and plan from its own random stream."""

    def __init__(self, ordinal: int, width: int, profile: Profile, rng: random.Random,
                 visits_per_year: int | None) -> None:
        self.ordinal, self.profile, self.rng = ordinal, profile, rng
        self.custom = visits_per_year
        self.subject = f"FSGS-{ordinal:0{width}d}"
        self.mrn = f"{rng.randint(100, 999)}{ordinal:05d}"
        self.seq = 0
        self.entries: list[Json] = []
        self.values: list[Json] = []
        self.corrections: list[tuple[Json, Json]] = []
        self.infusion: Json = {}
        self.identifying: list[str] = []
        self.patient_url = self._urn()
        start = date(2023, 1, 15) + timedelta(days=(45 * ordinal) % 700 + rng.randint(0, 20))
        minutes = 9 * 60 + rng.randint(0, 90)
        self.day0 = datetime.combine(start, time(minutes // 60, minutes % 60), TEHRAN)
        day = 28 if (start.month, start.day) == (2, 29) else start.day
        self.birth = date(start.year - profile.age, start.month, day) - timedelta(
            days=rng.randint(10, 350))
        self.latest = self.day0

    def _urn(self) -> str:
        return f"urn:uuid:{uuid.UUID(int=self.rng.getrandbits(128), version=4)}"

    def _accession(self, reference_lab: bool) -> Json:
        self.seq += 1
        prefix = "R" if reference_lab else "L"
        return {"system": REFLAB_SYSTEM if reference_lab else LAB_SYSTEM,
                "value": f"{prefix}{self.ordinal:04d}-{self.seq:04d}"}

    def _morning(self, day: int) -> datetime:
        minutes = 7 * 60 + 30 + self.rng.randint(0, 80)
        return datetime.combine(self.day0.date() + timedelta(days=day),
                                time(minutes // 60, minutes % 60), TEHRAN)

    def visits(self) -> list[Visit]:
        p, out = self.profile, []
        if p.screening and self.custom is None:
            out.append(Visit("SCR", Decimal(-21), self._morning(-21)))
        out.append(Visit("BL", Decimal(0), self._morning(-self.rng.randint(3, 6))))
        if self.custom is not None:
            for j in range(1, self.custom + 1):
                day = max(1, round(365 * j / self.custom))
                out.append(Visit(f"V{j}", Decimal(day), self._morning(day)))
            return out
        late = timedelta(hours=17, minutes=30) if p.late_h12_specimen else timedelta(
            hours=12, minutes=self.rng.randint(-60, 60))
        out.append(Visit("H12", Decimal("0.5"), self.day0 + late))
        for code, nominal in SCHEDULE[2:]:
            low, high = JITTER.get(code, (-3, 3))
            day = p.shifted.get(code, nominal + self.rng.randint(low, high))
            if code not in p.missed:
                out.append(Visit(code, Decimal(nominal), self._morning(day)))
        return out

    def panel(self, visit: Visit) -> list[str]:
        if visit.code == "SCR":
            return [a for a in PANEL if a in SCREENING]
        if self.custom is not None:
            return [*PANEL, "height", "weight"]
        wanted = [a for a in PANEL if self._drawn(a, visit.code)]
        return wanted + (["height", "weight"] if visit.code in self.profile.vitals else [])

    @staticmethod
    def _drawn(analyte: str, code: str) -> bool:
        if analyte in ("il2", "il10"):
            return code in CYTOKINE_VISITS
        if analyte in ("treg-pct-cd4", "treg-abs"):
            return code in TREG_VISITS
        if analyte == "egfr-reported":
            return code in EGFR_VISITS
        return not (analyte == "urine-protein-24h" and code == "H12")

    def value(self, analyte: str, visit: Visit, weight: Decimal) -> Decimal:
        p = self.profile
        test = TESTS[p.variants.get(analyte, analyte)]
        if (analyte, visit.code) in p.fixed:
            return Decimal(p.fixed[analyte, visit.code])
        noise = 1 + Decimal(self.rng.randint(-5, 5)) / 100
        if analyte == "upcr":
            protein = _interp(p.anchors["urine-protein-24h"], visit.day)
            return _q(protein / (18 * weight) * noise, test.places)
        anchors = p.anchors.get(analyte) or DEFAULT_ANCHORS[analyte]
        return _q(_interp(anchors, visit.day) * noise, test.places)

    def body(self, visit: Visit) -> tuple[Decimal, Decimal]:
        """Height and weight on the visit's day (growth of 5 to 6 cm and 2 kg a year)."""
        days = Decimal((visit.at - self.day0).days)
        growth = Decimal(6 if self.profile.age < 6 else 5)
        height = _q(Decimal(self.profile.height) + growth * days / 365, 1)
        weight = _q(Decimal(self.profile.weight) + 2 * days / 365, 1)
        return height, weight

    def build(self) -> _Built:
        self._patient()
        self._subject()
        self._infusion()
        for visit in self.visits():
            self._visit(visit)
        return _Built(self._bundle(), self._plan(), self.corrections)

    def _entry(self, url: str, resource: Json, method: str, target: str,
               if_none_exist: str | None = None) -> None:
        request = {"method": method, "url": target}
        if if_none_exist:
            request["ifNoneExist"] = if_none_exist
        self.entries.append({"fullUrl": url, "resource": resource, "request": request})

    def _patient(self) -> None:
        rng, p = self.rng, self.profile
        given = rng.choice(GIVEN[p.sex])
        family = rng.choice(FAMILY)
        line = f"{rng.randint(1, 99)} {rng.choice(STREETS)}"
        postal = f"{rng.randint(10000, 99999)}{rng.randint(10000, 99999)}"
        phone = f"+98 21 5550 {rng.randint(1000, 9999)}"
        self.identifying = [given, family, self.mrn, self.birth.isoformat(), line, postal, phone]
        resource = {
            "resourceType": "Patient",
            "identifier": [{"use": "usual", "system": MRN_SYSTEM, "value": self.mrn,
                            "type": {"coding": [{"code": "MR", "system": V2_0203}]}}],
            "active": True,
            "name": [{"use": "official", "family": family, "given": [given]}],
            "telecom": [{"system": "phone", "use": "home", "value": phone}],
            "gender": p.sex,
            "birthDate": self.birth.isoformat(),
            "address": [{"use": "home", "line": [line], "city": "Tehran", "postalCode": postal,
                         "country": "IR"}],
        }
        self._entry(self.patient_url, resource, "POST", "Patient",
                    f"identifier={MRN_SYSTEM}|{self.mrn}")

    def _subject(self) -> None:
        study: Json = {"reference": f"ResearchStudy?identifier={STUDY_SYSTEM}|{STUDY_ID}"}
        if self.profile.study_by_identifier:
            study = {"identifier": {"system": STUDY_SYSTEM, "value": STUDY_ID}}
        resource = {"resourceType": "ResearchSubject", "status": "on-study",
                    "identifier": [{"system": SUBJECT_SYSTEM, "value": self.subject}],
                    "study": study, "individual": {"reference": self.patient_url},
                    "period": {"start": self.day0.date().isoformat()}}
        self._entry(self._urn(), resource, "PUT",
                    f"ResearchSubject?identifier={SUBJECT_SYSTEM}|{self.subject}")

    def _infusion(self) -> None:
        end = self.day0 + timedelta(minutes=self.rng.randint(40, 75))
        identifier = {"system": f"{HOSPITAL}/medication-administration",
                      "value": f"MA-{self.mrn}-1"}
        resource = {
            "resourceType": "MedicationAdministration", "status": "completed",
            "identifier": [identifier],
            "medicationCodeableConcept": {"coding": [{"system": PRODUCT, "code": "ad-msc",
                                                      "display": PRODUCT_DISPLAY}]},
            "subject": {"reference": self.patient_url},
            "effectivePeriod": {"start": _when(self.day0), "end": _when(end)},
            "dosage": {"route": {"coding": [{"system": "http://snomed.info/sct",
                                             "code": "47625008", "display": "Intravenous route"}]},
                       "dose": {"value": 1.0, "unit": "10^6 cells/kg", "system": UCUM,
                                "code": "10*6/kg"}},
        }
        self.infusion = {"identifier": identifier, "status": "completed", "start": _when(self.day0),
                         "end": _when(end), "dose": "1.0", "dose_unit": "10*6/kg"}
        self._entry(self._urn(), resource, "POST", "MedicationAdministration",
                    f"identifier={identifier['system']}|{identifier['value']}")

    def _visit(self, visit: Visit) -> None:
        height, weight = self.body(visit)
        issued = visit.at + timedelta(hours=self.rng.randint(2, 6))
        creatinine_mg: Decimal | None = None
        for analyte in self.panel(visit):
            if analyte == "height":
                self._observe(analyte, visit, height, visit.at - timedelta(minutes=30))
                continue
            if analyte == "weight":
                self._observe(analyte, visit, weight, visit.at - timedelta(minutes=29))
                continue
            if analyte == "egfr-reported":
                if creatinine_mg:
                    egfr = _q(Decimal("0.413") * height / creatinine_mg, 0)
                    self._observe(analyte, visit, egfr, visit.at, issued)
                continue
            value = self.value(analyte, visit, weight)
            if analyte == "creatinine":
                si = self.profile.variants.get("creatinine") == "creatinine-si"
                creatinine_mg = value / Decimal("88.4") if si else value
            at = visit.at - timedelta(minutes=25) if analyte == "urine-protein-24h" else visit.at
            self._observe(analyte, visit, value, at, issued)

    def _observe(self, analyte: str, visit: Visit, value: Decimal, at: datetime,
                 issued: datetime | None = None) -> None:
        p, key = self.profile, (analyte, visit.code)
        variant = p.variants.get(analyte, analyte)
        if analyte == "urine-protein-24h" and visit.code in p.protein_g:
            variant, value = "urine-protein-24h-g", value / 1000
        test = TESTS[variant]
        reference_lab = p.reference_lab and analyte in REFERENCE_LAB
        if reference_lab:
            issued = visit.at + timedelta(days=self.rng.randint(3, 9), hours=5)
        issued = issued or at + timedelta(minutes=5)
        self.latest = max(self.latest, issued)
        url, identifier = self._urn(), self._accession(reference_lab)
        specimen_at = None
        late = p.late_h12_specimen and visit.code == "H12" and analyte == "creatinine"
        if late:
            specimen_at, at = at, at + timedelta(hours=1, minutes=15)
        resource: Json = {
            "resourceType": "Observation", "identifier": [identifier], "status": "final",
            "category": [{"coding": [{"system": CATEGORY, "code": test.category,
                                      "display": CATEGORY_DISPLAY[test.category]}]}],
            "code": {"coding": [{"system": test.system, "code": test.code,
                                 "display": test.display}], "text": test.display},
            "subject": {"reference": self.patient_url},
            "effectiveDateTime": _when(at, reference_lab), "issued": _when(issued, reference_lab),
            "valueQuantity": {"value": _num(value), "unit": test.unit_text, "system": UCUM,
                              "code": test.unit},
        }
        comparator = p.censored.get(key)
        if comparator:
            resource["valueQuantity"]["comparator"] = comparator
        high = p.uln.get(analyte)
        if high:
            resource["referenceRange"] = [{"high": {"value": _num(Decimal(high)), "unit": "U/L",
                                                    "system": UCUM, "code": "U/L"}}]
        if specimen_at is not None:
            resource["specimen"] = {"reference": self._specimen(specimen_at, at)}
        self._entry(url, resource, "POST", "Observation")
        self.values.append({
            "analyte": test.analyte, "system": test.system, "code": test.code,
            "value": _txt(value), "unit": test.unit, "comparator": comparator,
            "reference_high": high, "time": resource["effectiveDateTime"],
            "specimen_time": _when(specimen_at) if specimen_at else None,
            "issued": resource["issued"], "status": "final", "category": test.category,
            "scheduled": visit.code, "identifier": identifier, "full_url": url,
            "correction": self._correct(key, url, resource),
        })

    def _specimen(self, collected: datetime, received: datetime) -> str:
        url = self._urn()
        resource = {"resourceType": "Specimen", "status": "available",
                    "identifier": [{"system": f"{HOSPITAL}/specimen",
                                    "value": f"S{self.ordinal:04d}-{self.seq:04d}"}],
                    "type": {"coding": [{"system": "http://snomed.info/sct", "code": "119364003",
                                         "display": "Serum specimen"}]},
                    "subject": {"reference": self.patient_url},
                    "collection": {"collectedDateTime": _when(collected)},
                    "receivedTime": _when(received)}
        self._entry(url, resource, "POST", "Specimen")
        return url

    def _correct(self, key: tuple[str, str], url: str, original: Json) -> Json | None:
        p = self.profile
        if key not in p.amend and key not in p.withdraw:
            return None
        resource = json.loads(json.dumps(original))
        resource["subject"] = {"reference": f"Patient?identifier={MRN_SYSTEM}|{self.mrn}"}
        issued = datetime.fromisoformat(original["issued"]) + timedelta(days=9, hours=2)
        resource["issued"] = _when(issued)
        if key in p.amend:
            new = Decimal(p.amend[key])
            resource["status"] = "amended"
            resource["valueQuantity"]["value"] = _num(new)
            resource["note"] = [{"text": "Result recalculated after a calibration error."}]
            plan: Json = {"status": "amended", "value": _txt(new)}
        else:
            resource["status"] = "entered-in-error"
            resource["note"] = [{"text": "Sample belonged to another patient."}]
            plan = {"status": "entered-in-error", "value": None}
        plan.update({"issued": resource["issued"], "file": CORRECTIONS_FILE})
        identifier = original["identifier"][0]
        entry = {"fullUrl": url, "resource": resource, "request": {
            "method": "PUT", "url": f"Observation?identifier={identifier['system']}|"
                                   f"{identifier['value']}"}}
        self.corrections.append((entry, plan))
        return plan

    def _bundle(self) -> Json:
        stamp = self.latest + timedelta(hours=1)
        return {"resourceType": "Bundle", "type": "transaction",
                "identifier": {"system": "urn:ietf:rfc:3986", "value": self._urn()},
                "timestamp": _when(stamp), "entry": self.entries}

    def _plan(self) -> Json:
        return {"subject": self.subject, "intent": self.profile.intent, "sex": self.profile.sex,
                "birth_date": self.birth.isoformat(), "mrn": {"system": MRN_SYSTEM,
                                                              "value": self.mrn},
                "patient_full_url": self.patient_url, "day0": _when(self.day0),
                "identifying": self.identifying,
                "infusion": self.infusion, "missed_visits": sorted(self.profile.missed),
                "moved_visits": dict(sorted(self.profile.shifted.items())),
                "values": self.values}


V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
PRODUCT_DISPLAY = "Allogeneic adipose-derived mesenchymal stromal cells"
CATEGORY_DISPLAY = {"laboratory": "Laboratory", "vital-signs": "Vital Signs"}
GIVEN = {"female": ("Sara", "Zahra", "Maryam", "Fatemeh", "Niloufar", "Parisa", "Yasaman"),
         "male": ("Ali", "Reza", "Amir", "Hossein", "Mehdi", "Arman", "Kian")}
FAMILY = ("Ahmadi", "Hosseini", "Karimi", "Moradi", "Rahimi", "Jafari", "Sadeghi", "Rostami")
STREETS = ("Valiasr Street", "Enghelab Street", "Azadi Avenue", "Shariati Street")


def _participants(n: int, seed: int, visits_per_year: int | None) -> Iterator[_Built]:
    root, width = random.Random(seed), max(2, len(str(n)))
    for ordinal in range(1, n + 1):
        rng = random.Random(root.getrandbits(64))
        profile = PROFILES[(ordinal - 1) % len(PROFILES)]
        yield _Participant(ordinal, width, profile, rng, visits_per_year).build()


def make_bundles(n_participants: int, seed: int = DEFAULT_SEED,
                 visits_per_year: int | None = None) -> Iterator[Json]:
    """Yield one transaction Bundle per participant (the five profiles in turn).

    ``visits_per_year=None`` follows the protocol schedule (about 140 Observations each);
    an integer k replaces it by k evenly spaced visits with the full panel (14 Observations a
    visit, so k=72 gives one Bundle of about 1,000 Observations).
    """
    for built in _participants(n_participants, seed, visits_per_year):
        yield built.bundle


def make_samples(seed: int = DEFAULT_SEED) -> dict[str, Json]:
    """The sample files by name: five participant Bundles, the corrections, the plan."""
    files: dict[str, Json] = {}
    plan: Json = {"schema_version": 1, "seed": seed, "study": {"system": STUDY_SYSTEM,
                                                               "value": STUDY_ID},
                  "timezone": "Asia/Tehran", "participants": []}
    corrections: list[Json] = []
    for index, built in enumerate(_participants(len(PROFILES), seed, None), start=1):
        name = f"p{index}-{built.plan['subject']}.json"
        files[name] = built.bundle
        plan["participants"].append({"file": name, **built.plan})
        corrections.extend(entry for entry, _ in built.corrections)
    stamp = max(datetime.fromisoformat(e["resource"]["issued"]) for e in corrections)
    stamp += timedelta(hours=1)
    rng = random.Random(seed + 1)
    files[CORRECTIONS_FILE] = {
        "resourceType": "Bundle", "type": "transaction", "timestamp": _when(stamp),
        "identifier": {"system": "urn:ietf:rfc:3986",
                       "value": f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"},
        "entry": corrections}
    plan["files"] = sorted(files)
    files["plan.json"] = plan
    return files


def _dumps(document: Any, indent: int | None) -> str:
    return json.dumps(document, indent=indent, sort_keys=True, ensure_ascii=False)


def _plan_text(plan: Json) -> str:
    """plan.json, indented, with one line per value so that it stays short and diffable."""
    shallow = dict(plan, participants=[dict(p, values=f"@{i}")
                                       for i, p in enumerate(plan["participants"])])
    text = _dumps(shallow, 2)
    for i, participant in enumerate(plan["participants"]):
        rows = ",\n        ".join(_dumps(value, None) for value in participant["values"])
        text = text.replace(f'"@{i}"', f"[\n        {rows}\n      ]")
    return text + "\n"


def write_samples(out: Path, seed: int = DEFAULT_SEED) -> list[Path]:
    """Write the sample files into ``out``; the same seed always gives the same bytes."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in sorted(make_samples(seed).items()):
        path = out / name
        text = _plan_text(document) if name == "plan.json" else _dumps(document, 2)
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8",
                        newline="\n")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="folder to write into (default: this script's folder)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"random seed (default {DEFAULT_SEED})")
    args = parser.parse_args(argv)
    for path in write_samples(args.out, args.seed):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
