"""The endpoints on a real EHR export (Synthea, shared data), read without the mapping layer."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fhir_adapter.trial.endpoints import compute
from fhir_adapter.trial.model import Infusion, Measurement, Participant, ParticipantRecord

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "synthea"
ALI = DATA / "Ali_Herman_75c71918-f07f-4492-af1a-ce006a1e8aaf.json"

pytestmark = pytest.mark.skipif(not ALI.is_file(), reason=f"real data not found at {DATA}")


def _read(catalogue) -> tuple[Participant, list[Measurement]]:
    """Patient and lab Observations, by the catalogue's codes, values kept as exact decimals."""
    bundle = json.loads(ALI.read_text(), parse_float=Decimal)
    resources = [e["resource"] for e in bundle["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    out = []
    for r in resources:
        if r["resourceType"] != "Observation" or "valueQuantity" not in r:
            continue
        for coding in r["code"]["coding"]:
            found = catalogue.lookup(coding.get("system"), coding.get("code"))
            q = r["valueQuantity"]
            if found is None or q.get("code") not in found[1].units:
                continue
            multiplier, divisor = found[1].units[q["code"]]
            out.append(
                Measurement(
                    source=f"Observation/{r['id']}",
                    analyte=found[0].key,
                    value=q["value"] * multiplier / divisor,
                    unit=found[0].unit,
                    at=datetime.fromisoformat(r["effectiveDateTime"]),
                    status=r["status"],
                )
            )
    born = date.fromisoformat(patient["birthDate"])
    return Participant("S-ALI", patient["gender"], born), out


def test_adult_ehr_export(study, catalogue):
    participant, measurements = _read(catalogue)
    by_day = {m.at.date().isoformat(): m for m in measurements if m.analyte == "creatinine"}
    # the export has creatinine on 2020-06-08, 2020-06-14 and 2020-09-06 (all 05:29:14Z): with
    # Day 0 one day after the first, it is the baseline, the second falls exactly on the start of
    # W1 (5 d, inclusive) and the third in M3 (89 d; window 83..97 d)
    base, w1, m3 = by_day["2020-06-08"], by_day["2020-06-14"], by_day["2020-09-06"]
    day0 = base.at + timedelta(days=1)
    assert w1.at - day0 == timedelta(days=5)
    rec = ParticipantRecord(
        participant, [Infusion("MedicationAdministration/x", day0, "completed")], measurements
    )
    out = compute(rec, study, catalogue)

    def renal(analyte: str, visit: str):
        [r] = [
            v
            for v in out.visit_results
            if (v.endpoint, v.analyte, v.visit) == ("renal-function", analyte, visit)
        ]
        return r

    for visit, later in (("W1", w1), ("M3", m3)):
        r = renal("creatinine", visit)
        assert (r.value, r.baseline, r.change) == (
            later.value,
            base.value,
            later.value - base.value,
        )
        assert r.sources == (later.source, base.source)

    # male, born 1952-03-16: 68 at Day 0 (2020-06-09) and at M3 (2020-09-06) -> CKD-EPI 2021
    def ckd_epi_male(scr: float, age: int) -> float:
        ratio = scr / 0.9
        return 142 * min(ratio, 1) ** -0.302 * max(ratio, 1) ** -1.2 * 0.9938**age

    e = renal("egfr-computed", "M3")
    assert e.egfr_method == "ckd-epi-2021"
    assert float(e.value) == pytest.approx(ckd_epi_male(float(m3.value), 68), abs=0.05)
    assert float(e.baseline) == pytest.approx(ckd_epi_male(float(base.value), 68), abs=0.05)
    assert {p.age_at_day0 for p in out.participant_results} == {68}

    # ALT: baseline 58.8 U/L is above the default ULN 40 -> the abnormal-baseline rule: 38.5 at
    # M3 is below 1.5 x 58.8, grade 0; nothing at W2, so no liver-enzyme-increase result
    [grade] = [p for p in out.participant_results if p.code == "max-ctcae-grade-alt"]
    assert grade.value == 0
    assert not [p for p in out.participant_results if p.code == "liver-enzyme-increase-w2"]
