"""The formulas and thresholds, against published and hand-worked values (TRIAL.md 6.1-6.4)."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from fhir_adapter.trial.endpoints.creatinine import category
from fhir_adapter.trial.endpoints.liver import ctcae_grade
from fhir_adapter.trial.endpoints.proteinuria import mosteller_bsa
from fhir_adapter.trial.endpoints.renal import bedside_schwartz, ckd_epi_2021
from fhir_adapter.trial.endpoints.summary import median
from fhir_adapter.trial.rounding import publish

D = Decimal


def ckd_epi_again(scr: float, age: int, female: bool) -> float:
    """CKD-EPI 2021 (Inker et al., NEJM 2021) written again, in floats."""
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    r = scr / kappa
    egfr = 142 * min(r, 1) ** alpha * max(r, 1) ** -1.2 * 0.9938**age
    return egfr * 1.012 if female else egfr


@pytest.mark.parametrize(
    ("scr", "age", "sex", "by_hand"),
    [
        # female 50 y, Scr 0.8: 142 x (0.8/0.7)^-1.2 x 0.9938^50 x 1.012
        #   = 142 x 0.85194 x 0.73275 x 1.012 = 89.7
        ("0.8", 50, "female", 89.7),
        # male 60 y, Scr 1.2: 142 x (1.2/0.9)^-1.2 x 0.9938^60 = 142 x 0.70810 x 0.68852 = 69.2
        ("1.2", 60, "male", 69.2),
        # below kappa the alpha branch: female 30 y, Scr 0.5: 142 x (0.5/0.7)^-0.241
        #   x 0.9938^30 x 1.012 = 142 x 1.08447 x 0.82979 x 1.012 = 129.3
        ("0.5", 30, "female", 129.3),
        # at kappa both factors are 1: male 40 y, Scr 0.9: 142 x 0.9938^40 = 142 x 0.77976 = 110.7
        ("0.9", 40, "male", 110.7),
    ],
)
def test_ckd_epi_2021(scr, age, sex, by_hand):
    got = ckd_epi_2021(D(scr), age, sex)
    assert float(publish(got, "egfr")) == pytest.approx(by_hand, abs=0.05)
    assert float(got) == pytest.approx(ckd_epi_again(float(scr), age, sex == "female"), rel=1e-12)


def test_bedside_schwartz():
    # 0.413 x 120 / 0.5 = 99.12 -> 99.1
    assert bedside_schwartz(D(120), D("0.5"), D("0.413")) == D("99.12")
    assert publish(bedside_schwartz(D(120), D("0.5"), D("0.413")), "egfr") == D("99.1")


def test_mosteller_bsa():
    # sqrt(100 x 36 / 3600) = 1 ; sqrt(150 x 48 / 3600) = sqrt(2) = 1.41421356...
    assert mosteller_bsa(D(100), D(36)) == 1
    assert float(mosteller_bsa(D(150), D(48))) == pytest.approx(math.sqrt(2), rel=1e-15)


@pytest.mark.parametrize(
    ("value", "grade"),
    [
        # ULN 40, normal baseline: grade 1 > 40..120, 2 > 120..200, 3 > 200..800, 4 > 800
        ("40", 0),
        ("40.01", 1),
        ("120", 1),
        ("120.01", 2),
        ("200", 2),
        ("200.01", 3),
        ("800", 3),
        ("800.01", 4),
    ],
)
def test_ctcae_normal_baseline(study, value, grade):
    assert ctcae_grade(D(value), D(40), D(30), D(40), study) == grade
    assert ctcae_grade(D(value), D(40), None, None, study) == grade  # no baseline: the ULN rule


@pytest.mark.parametrize(
    ("value", "grade"),
    [
        # baseline 60 > ULN 40: grade 1 >= 90 (1.5 x 60)..180, 2 > 180..300, 3 > 300..1200, 4 > 1200
        ("89.99", 0),
        ("90", 1),
        ("180", 1),
        ("180.01", 2),
        ("300", 2),
        ("300.01", 3),
        ("1200", 3),
        ("1200.01", 4),
    ],
)
def test_ctcae_abnormal_baseline(study, value, grade):
    assert ctcae_grade(D(value), D(40), D(60), D(40), study) == grade


def test_ctcae_baseline_normality_judged_with_its_own_uln(study):
    # baseline 45: normal against its own ULN 50 (value 60 > 50 -> grade 1), abnormal against 40
    # (then grade 1 needs >= 1.5 x 45 = 67.5 -> grade 0)
    assert ctcae_grade(D(60), D(50), D(45), D(50), study) == 1
    assert ctcae_grade(D(60), D(50), D(45), D(40), study) == 0
    assert ctcae_grade(D("67.5"), D(50), D(45), D(40), study) == 1


@pytest.mark.parametrize(
    ("percent", "code"),
    [("-10", "D"), ("-10.01", "D"), ("-9.99", "N"), ("9.99", "N"), ("10", "U"), ("0", "N")],
)
def test_creatinine_category(study, percent, code):
    assert category(D(percent), study.creatinine_change_pct) == code


def test_publish_rounds_half_up():
    assert publish(D("99.15"), "egfr") == D("99.2")
    assert publish(D("-10.005"), "percent") == D("-10.01")
    assert publish(None, "percent") is None


def test_median():
    assert median([D("0.3"), D("-0.1"), D("0.2")]) == D("0.2")
    assert median([D("1"), D("4"), D("2"), D("3")]) == D("2.5")
    assert median([]) is None
