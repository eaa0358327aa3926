"""compute(): the visit-level and participant-level results of one participant (TRIAL.md 6)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from fhir_adapter.trial.endpoints import compute
from tests.trial.trial_builders import (
    at,
    find_participant,
    find_visit,
    meas,
    participant_result,
    record,
    visit_result,
)

D = Decimal


# --- change, percent change, censoring -----------------------------------------------------


def test_exact_percent_change_and_category_decreased(study, catalogue):
    base, w2 = meas("creatinine", "1.0", at(days=-3)), meas("creatinine", "0.9", at(days=14))
    out = compute(record([base, w2]), study, catalogue)
    r = visit_result(out, "serum-creatinine", "creatinine", "W2")
    assert (r.value, r.baseline, r.change) == (D("0.9"), D("1.0"), D("-0.1"))
    assert r.percent_change == D("-10")  # exactly -10 %, hence decreased (<= -10 %)
    assert r.interpretation == "D"
    assert r.unit == "mg/dL"
    assert r.sources == (w2.source, base.source)
    p = participant_result(out, "creatinine-category-w2")
    assert (p.value, p.sources) == ("D", (r.key,))
    assert r.key == "NCT02382874-1.serum-creatinine.creatinine.W2"


def test_creatinine_just_below_plus_10_percent_is_unchanged(study, catalogue):
    # 1.0 -> 1.0999: +9.99 % -> unchanged (N); no interpretation on the visit result
    values = [meas("creatinine", "1.0", at(days=-3)), meas("creatinine", "1.0999", at(days=14))]
    out = compute(record(values), study, catalogue)
    r = visit_result(out, "serum-creatinine", "creatinine", "W2")
    assert r.percent_change == D("9.99")
    assert r.interpretation is None
    assert participant_result(out, "creatinine-category-w2").value == "N"
    up = [meas("creatinine", "1.0", at(days=-3)), meas("creatinine", "1.1", at(days=14))]
    assert (
        participant_result(compute(record(up), study, catalogue), "creatinine-category-w2").value
        == "U"
    )


def test_no_baseline_value_shown_without_change(study, catalogue):
    w2 = meas("creatinine", "0.9", at(days=14))
    before_window = meas("creatinine", "1.0", at(days=-31))  # too early to be baseline
    out = compute(record([w2, before_window]), study, catalogue)
    r = visit_result(out, "serum-creatinine", "creatinine", "W2")
    assert r.value == D("0.9")
    assert (r.baseline, r.change, r.percent_change, r.interpretation) == (None, None, None, None)
    assert r.sources == (w2.source,)
    assert find_participant(out, "creatinine-category-w2") is None


def test_censored_il2_gives_no_change(study, catalogue):
    values = [meas("il2", "10", at(days=-2)), meas("il2", "5", at(days=28), comparator="<")]
    r = visit_result(compute(record(values), study, catalogue), "anti-inflammatory", "il2", "W4")
    assert (r.value, r.comparator, r.baseline) == (D(5), "<", D(10))
    assert (r.change, r.percent_change, r.fold_change) == (None, None, None)


def test_censored_baseline_gives_no_change(study, catalogue):
    values = [meas("il2", "5", at(days=-2), comparator="<"), meas("il2", "12", at(days=28))]
    r = visit_result(compute(record(values), study, catalogue), "anti-inflammatory", "il2", "W4")
    assert (r.baseline, r.baseline_comparator) == (D(5), "<")
    assert (r.change, r.percent_change, r.fold_change) == (None, None, None)


def test_il10_fold_change(study, catalogue):
    # 4 -> 10 pg/mL: change 6, percent 150, fold 10 / 4 = 2.5
    values = [meas("il10", "4", at(days=-2)), meas("il10", "10", at(days=28))]
    r = visit_result(compute(record(values), study, catalogue), "anti-inflammatory", "il10", "W4")
    assert (r.change, r.percent_change, r.fold_change) == (D(6), D(150), D("2.5"))
    assert r.unit == "pg/mL"


def test_treg_fold_change_and_visits(study, catalogue):
    # 5.0 % -> 6.5 % at M3: fold 1.3; W2 is not a Treg visit
    values = [
        meas("treg-pct-cd4", "5.0", at(days=-2)),
        meas("treg-pct-cd4", "6.5", at(days=90)),
        meas("treg-pct-cd4", "6.0", at(days=14)),
    ]
    out = compute(record(values), study, catalogue)
    assert visit_result(out, "treg", "treg-pct-cd4", "M3").fold_change == D("1.3")
    assert find_visit(out, "treg", "treg-pct-cd4", "W2") is None


def test_fold_change_only_where_the_endpoint_has_it(study, catalogue):
    values = [meas("urea", "30", at(days=-2)), meas("urea", "45", at(days=7))]
    r = visit_result(compute(record(values), study, catalogue), "renal-function", "urea", "W1")
    assert (r.change, r.percent_change, r.fold_change) == (D(15), D(50), None)


# --- liver function ---------------------------------------------------------------------------


def test_liver_grades_with_and_without_reference_range(study, catalogue):
    values = [
        meas("alt", "30", at(days=-2)),  # normal baseline (default ULN 40)
        meas("alt", "45", at(days=14), uln="50"),  # own ULN 50: 45 <= 50 -> grade 0
        meas("ast", "30", at(days=-2)),
        meas("ast", "45", at(days=14)),  # default ULN 40: 45 > 40 -> grade 1
    ]
    out = compute(record(values), study, catalogue)
    alt = visit_result(out, "liver-function", "alt", "W2")
    ast = visit_result(out, "liver-function", "ast", "W2")
    assert (alt.uln, alt.fold_uln, alt.ctcae_grade) == (D(50), D("0.90"), 0)
    assert (ast.uln, ast.fold_uln, ast.ctcae_grade) == (D(40), D("1.13"), 1)  # 45/40 = 1.125
    increase = participant_result(out, "liver-enzyme-increase-w2")
    assert increase.value is True  # AST above baseline with grade 1
    assert increase.sources == (ast.key,)


def test_liver_abnormal_baseline_rule(study, catalogue):
    # baseline 45 without referenceRange: abnormal against the default 40, so grade 1 needs
    # >= 1.5 x 45 = 67.5. With its own ULN 50 the same baseline is normal, and 60 > 50 is grade 1.
    abnormal = [meas("alt", "45", at(days=-2)), meas("alt", "60", at(days=14), uln="50")]
    out = compute(record(abnormal), study, catalogue)
    assert visit_result(out, "liver-function", "alt", "W2").ctcae_grade == 0
    assert participant_result(out, "liver-enzyme-increase-w2").value is False
    normal = [meas("alt", "45", at(days=-2), uln="50"), meas("alt", "60", at(days=14), uln="50")]
    out = compute(record(normal), study, catalogue)
    assert visit_result(out, "liver-function", "alt", "W2").ctcae_grade == 1
    assert participant_result(out, "liver-enzyme-increase-w2").value is True


def test_max_grade_includes_values_outside_windows(study, catalogue):
    w2 = meas("alt", "50", at(days=14))  # grade 1
    day20 = meas("alt", "250", at(days=20))  # outside every window: 200 < 250 <= 800 -> grade 3
    prelim = meas("alt", "900", at(days=21), status="preliminary")  # does not count
    pre_day0 = meas("alt", "30", at(days=-1))
    out = compute(record([w2, day20, prelim, pre_day0]), study, catalogue)
    top = participant_result(out, "max-ctcae-grade-alt")
    assert top.value == 3
    assert top.sources == (day20.source,)  # no visit-level result for it: its Observation
    assert find_participant(out, "max-ctcae-grade-ast") is None
    assert top.age_at_day0 == 9


def test_max_grade_from_a_visit_cites_its_result(study, catalogue):
    out = compute(record([meas("ast", "130", at(days=14))]), study, catalogue)  # 120 < 130: grade 2
    r = visit_result(out, "liver-function", "ast", "W2")
    assert participant_result(out, "max-ctcae-grade-ast").sources == (r.key,)
    assert participant_result(out, "max-ctcae-grade-ast").value == 2
    # no baseline: above-baseline cannot be judged, so no liver-enzyme-increase result
    assert find_participant(out, "liver-enzyme-increase-w2") is None


# --- proteinuria ------------------------------------------------------------------------------


def _protein(value, days, **kw):
    return meas("urine-protein-24h", value, at(days=days), **kw)


def test_remission_categories_without_body_surface(study, catalogue):
    base = _protein("4000", -2)
    values = [
        base,
        _protein("250", 7),  # < 300 mg/d: complete
        _protein("2000", 14),  # -50 % exactly and < 3500 mg/d: partial
        _protein("2100", 28),  # -47.5 %: none
        _protein("299.99", 365),
    ]
    out = compute(record(values), study, catalogue)
    got = {
        v: visit_result(out, "proteinuria", "urine-protein-24h", v).remission
        for v in ("W1", "W2", "W4", "M12")
    }
    assert got == {"W1": "complete", "W2": "partial", "W4": "none", "M12": "complete"}
    assert visit_result(out, "proteinuria", "urine-protein-24h", "W2").protein_rate_bsa is None
    assert participant_result(out, "proteinuria-best-response").value == "complete"
    assert participant_result(out, "proteinuria-response-m12").value == "complete"


def test_remission_with_body_surface(study, catalogue):
    # height 100 cm, weight 36 kg: BSA = sqrt(100 x 36 / 3600) = 1 m2
    # W2 1900 mg/d: -52.5 %, < 3500 mg/d, but 1900 / 1 / 24 = 79.17 mg/m2/h >= 40: none
    # W4 900 mg/d: -77.5 %, 900 / 24 = 37.5 mg/m2/h < 40: partial
    height, weight = meas("height", "100", at(days=-20)), meas("weight", "36", at(days=-20))
    upcr = meas("upcr", "2.1", at(days=14, hours=2))
    base = _protein("4000", -2)
    w2, w4 = _protein("1900", 14), _protein("900", 28)
    out = compute(record([height, weight, base, w2, w4, upcr]), study, catalogue)
    r2 = visit_result(out, "proteinuria", "urine-protein-24h", "W2")
    r4 = visit_result(out, "proteinuria", "urine-protein-24h", "W4")
    assert (r2.remission, r2.protein_rate_bsa, r2.upcr) == ("none", D("79.17"), D("2.1"))
    assert (r4.remission, r4.protein_rate_bsa, r4.upcr) == ("partial", D("37.50"), None)
    assert r2.sources == (w2.source, base.source, height.source, weight.source, upcr.source)
    best = participant_result(out, "proteinuria-best-response")
    assert (best.value, best.sources) == ("partial", (r4.key,))
    assert find_participant(out, "proteinuria-response-m12") is None  # M12 has no value


def test_height_after_the_sample_is_not_used(study, catalogue):
    # the only height is measured an hour after the W2 sample: BSA unknown, so the mg/d rule
    # applies: 1900 < 3500 and -52.5 % -> partial
    late_height = meas("height", "100", at(days=14, hours=1))
    weight = meas("weight", "36", at(days=-20))
    values = [late_height, weight, _protein("4000", -2), _protein("1900", 14)]
    r = visit_result(
        compute(record(values), study, catalogue), "proteinuria", "urine-protein-24h", "W2"
    )
    assert (r.remission, r.protein_rate_bsa) == ("partial", None)
    assert late_height.source not in r.sources


def test_height_older_than_90_days_is_not_used(study, catalogue):
    sample = at(days=14)
    old = meas("height", "100", sample - timedelta(days=90, seconds=1))
    weight = meas("weight", "36", at(days=-20))
    values = [old, weight, _protein("4000", -2), _protein("1900", 14)]
    r = visit_result(
        compute(record(values), study, catalogue), "proteinuria", "urine-protein-24h", "W2"
    )
    assert (r.remission, r.protein_rate_bsa) == ("partial", None)
    just_in = meas("height", "100", sample - timedelta(days=90))
    r = visit_result(
        compute(record([just_in, *values[1:]]), study, catalogue),
        "proteinuria",
        "urine-protein-24h",
        "W2",
    )
    assert (r.remission, r.protein_rate_bsa) == ("none", D("79.17"))


def test_partial_needs_a_baseline(study, catalogue):
    out = compute(record([_protein("1000", 14), _protein("250", 28)]), study, catalogue)
    assert visit_result(out, "proteinuria", "urine-protein-24h", "W2").remission == "none"
    assert visit_result(out, "proteinuria", "urine-protein-24h", "W4").remission == "complete"


# --- eGFR -------------------------------------------------------------------------------------


def test_child_gets_bedside_schwartz_with_height(study, catalogue):
    # born 2014-05-01, Day 0 2024-03-20: 9 y -> bedside Schwartz
    # W2: 0.413 x 120 / 0.5 = 99.12 ; baseline: 0.413 x 120 / 0.6 = 82.6
    # change 16.52 -> 16.5 ; percent 16.52 / 82.6 x 100 = 20 exactly
    height = meas("height", "120", at(days=-20))
    base, w2 = meas("creatinine", "0.6", at(days=-5)), meas("creatinine", "0.5", at(days=14))
    out = compute(record([height, base, w2]), study, catalogue)
    r = visit_result(out, "renal-function", "egfr-computed", "W2")
    assert (r.value, r.baseline, r.change, r.percent_change) == (
        D("99.1"),
        D("82.6"),
        D("16.5"),
        D("20"),
    )
    assert r.egfr_method == "bedside-schwartz"
    assert r.unit == "mL/min/{1.73_m2}"
    assert r.at == w2.at
    assert set(r.sources) == {w2.source, base.source, height.source}
    assert participant_result(out, "creatinine-category-w2").age_at_day0 == 9


def test_child_without_height_has_no_egfr(study, catalogue):
    values = [meas("creatinine", "0.6", at(days=-5)), meas("creatinine", "0.5", at(days=14))]
    out = compute(record(values), study, catalogue)
    assert find_visit(out, "renal-function", "egfr-computed", "W2") is None
    assert visit_result(out, "renal-function", "creatinine", "W2").change == D("-0.1")


def _ckd_epi_female(scr: float, age: int) -> float:
    r = scr / 0.7
    return 142 * min(r, 1) ** -0.241 * max(r, 1) ** -1.2 * 0.9938**age * 1.012


def test_adult_gets_ckd_epi_with_age_at_each_sample(study, catalogue):
    # born 1974-03-18, Day 0 2024-03-20: 50 y at Day 0 -> CKD-EPI 2021 for every visit, each
    # with the age at its own sample: baseline 2024-03-15 -> 49, W2 2024-04-03 -> 50,
    # M12 2025-03-20 -> 51.
    base = meas("creatinine", "0.8", at(days=-5))
    w2 = meas("creatinine", "0.8", at(days=14))
    m12 = meas("creatinine", "0.8", at(days=365))
    rec = record([base, w2, m12], birth=date(1974, 3, 18), sex="female")
    out = compute(rec, study, catalogue)
    r2 = visit_result(out, "renal-function", "egfr-computed", "W2")
    r12 = visit_result(out, "renal-function", "egfr-computed", "M12")
    assert r2.egfr_method == r12.egfr_method == "ckd-epi-2021"
    assert r2.value == D("89.7")  # the published example: female 50 y, Scr 0.8
    assert r12.value == D(str(round(_ckd_epi_female(0.8, 51), 1)))
    assert r2.baseline == r12.baseline == D(str(round(_ckd_epi_female(0.8, 49), 1)))
    assert r2.change == D(str(round(_ckd_epi_female(0.8, 50) - _ckd_epi_female(0.8, 49), 1)))
    assert r12.sources == (m12.source, base.source)  # no height in CKD-EPI
    assert find_participant(out, "max-ctcae-grade-alt") is None


def test_adult_from_the_18th_birthday_in_the_study_zone(study, catalogue):
    # Day 0 2024-03-20 22:00Z is 2024-03-21 01:30 in Tehran: born 2006-03-21 -> 18 on Day 0
    day0 = datetime(2024, 3, 20, 22, 0, tzinfo=UTC)
    w1 = meas("creatinine", "1.2", day0 + timedelta(days=7))
    out = compute(record([w1], birth=date(2006, 3, 21), sex="male", day0=day0), study, catalogue)
    r = visit_result(out, "renal-function", "egfr-computed", "W1")
    assert r.egfr_method == "ckd-epi-2021"
    assert find_participant(out, "max-ctcae-grade-alt") is None
    # 18 y male, 1.2 mg/dL: 142 x (1.2/0.9)^-1.2 x 0.9938^18
    expected = 142 * (1.2 / 0.9) ** -1.2 * 0.9938**18
    assert r.value == D(str(round(expected, 1)))


def test_unknown_sex_adult_has_no_egfr(study, catalogue):
    w1 = meas("creatinine", "1.2", at(days=7))
    out = compute(record([w1], birth=date(1980, 1, 1), sex="unknown"), study, catalogue)
    assert find_visit(out, "renal-function", "egfr-computed", "W1") is None
    assert find_visit(out, "renal-function", "creatinine", "W1") is not None


# --- participant level ------------------------------------------------------------------------


def test_participant_without_infusion_only_says_so(study, catalogue):
    values = [meas("creatinine", "0.5", at(days=14)), meas("alt", "300", at(days=14))]
    for rec in (record(values, day0=None), record(values, status="not-done")):
        out = compute(rec, study, catalogue)
        assert out.visit_results == []
        assert [(r.code, r.value, r.age_at_day0) for r in out.participant_results] == [
            ("no-infusion", True, None)
        ]


def test_age_at_day0_on_every_participant_result(study, catalogue):
    values = [meas("alt", "30", at(days=-1)), meas("alt", "35", at(days=14))]
    out = compute(record(values, birth=date(2014, 3, 20)), study, catalogue)  # 10th birthday
    assert {r.age_at_day0 for r in out.participant_results} == {10}
    out = compute(record(values, birth=None), study, catalogue)
    assert {r.age_at_day0 for r in out.participant_results} == {None}


def test_compute_is_deterministic_whatever_the_order(study, catalogue):
    values = [
        meas("height", "120", at(days=-20)),
        meas("weight", "22", at(days=-20)),
        meas("creatinine", "0.6", at(days=-5)),
        meas("creatinine", "0.5", at(days=14)),
        meas("creatinine", "0.55", at(days=15)),
        meas("urine-protein-24h", "3000", at(days=-2)),
        meas("urine-protein-24h", "900", at(days=90)),
        meas("alt", "30", at(days=-2)),
        meas("alt", "70", at(days=13)),
        meas("alt", "70", at(days=15)),
    ]
    first = compute(record(values), study, catalogue)
    shuffled = values[:]
    random.Random(7).shuffle(shuffled)
    again = compute(record(shuffled), study, catalogue)
    assert first == again
    assert visit_result(first, "liver-function", "alt", "W2").sources[0] == values[-1].source
