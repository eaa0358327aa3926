"""Windows and thresholds come from the study definition: change the file, the results follow."""

from __future__ import annotations

import tomllib
from datetime import date
from decimal import Decimal

from fhir_adapter.paths import mappings_dir
from fhir_adapter.trial.definitions import StudyDefinition
from fhir_adapter.trial.endpoints import compute
from tests.trial.trial_builders import (
    at,
    find_visit,
    meas,
    participant_result,
    record,
    visit_result,
)

D = Decimal


def _variant(study: StudyDefinition, change) -> StudyDefinition:
    """The study file read again, changed by ``change`` (``study``: the one the tests share)."""
    raw = tomllib.loads((mappings_dir() / "study.toml").read_text(encoding="utf-8"))
    change(raw)
    return StudyDefinition.from_dict(raw)


def test_windows_follow_the_definition(study, catalogue):
    values = [meas("creatinine", "1.0", at(days=-1)), meas("creatinine", "0.9", at(days=18))]
    assert (
        find_visit(
            compute(record(values), study, catalogue), "serum-creatinine", "creatinine", "W2"
        )
        is None
    )

    def widen(raw):
        next(v for v in raw["visits"] if v["code"] == "W2")["end"] = 18

    wide = _variant(study, widen)
    r = visit_result(
        compute(record(values), wide, catalogue), "serum-creatinine", "creatinine", "W2"
    )
    assert r.value == D("0.9")


def test_thresholds_follow_the_definition(study, catalogue):
    values = [
        meas("creatinine", "1.0", at(days=-1)),
        meas("creatinine", "0.95", at(days=14)),  # -5 %
        meas("urine-protein-24h", "4000", at(days=-1)),
        meas("urine-protein-24h", "250", at(days=14)),
        meas("alt", "45", at(days=14)),
    ]
    out = compute(record(values), study, catalogue)
    assert participant_result(out, "creatinine-category-w2").value == "N"
    assert visit_result(out, "proteinuria", "urine-protein-24h", "W2").remission == "complete"
    assert visit_result(out, "liver-function", "alt", "W2").ctcae_grade == 1

    def stricter(raw):
        raw["creatinine"]["change_threshold_pct"] = "5"
        raw["proteinuria"]["complete_below_mg_per_day"] = "200"
        raw["uln_default"]["alt"] = "50"

    out = compute(record(values), _variant(study, stricter), catalogue)
    assert participant_result(out, "creatinine-category-w2").value == "D"
    # 250 mg/d is no longer complete; -93.75 % and < 3500 mg/d: partial
    assert visit_result(out, "proteinuria", "urine-protein-24h", "W2").remission == "partial"
    assert visit_result(out, "liver-function", "alt", "W2").ctcae_grade == 0


def test_adult_age_follows_the_definition(study, catalogue):
    values = [meas("creatinine", "0.5", at(days=7)), meas("height", "150", at(days=-3))]
    rec = record(values, birth=date(2008, 1, 1), sex="female")  # 16 at Day 0
    out = compute(rec, study, catalogue)
    assert (
        visit_result(out, "renal-function", "egfr-computed", "W1").egfr_method == "bedside-schwartz"
    )

    def sixteen(raw):
        raw["egfr"]["adult_age_years"] = 16

    out = compute(rec, _variant(study, sixteen), catalogue)
    assert visit_result(out, "renal-function", "egfr-computed", "W1").egfr_method == "ckd-epi-2021"
