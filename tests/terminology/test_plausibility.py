"""Plausibility of a value in its analyte's canonical unit (terminology.judge), against the
bounds of mappings/analytes.toml. Every expected value is worked out here by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fhir_adapter.paths import mappings_dir
from fhir_adapter.terminology import IMPLAUSIBLE, IMPOSSIBLE, convert, judge, outside_plausible
from fhir_adapter.trial.definitions import AnalyteCatalogue

CATALOGUE = AnalyteCatalogue.from_file(mappings_dir() / "analytes.toml")
CREATININE = CATALOGUE.analytes["creatinine"]


def _as_sent(system: str, code: str, number: str, unit: str) -> tuple[str, str | None]:
    """(rule, message) of a value sent in ``unit`` under the code ``system|code``."""
    found = CATALOGUE.lookup(system, code)
    assert found is not None
    analyte, accepted = found
    sent = Decimal(number)
    verdict = judge(analyte, convert(sent, unit, accepted), None, received=(sent, unit, accepted))
    return (verdict.rule, verdict.message) if verdict else ("", None)


def test_the_bounds_are_read_from_the_catalogue() -> None:
    assert CREATININE.minimum == Decimal(0)
    assert CREATININE.plausible == (Decimal("0.05"), Decimal("20"))
    assert CATALOGUE.analytes["urine-protein-24h"].plausible == (Decimal(0), Decimal(40000))
    # computed by the adapter: never read from input, no bound
    assert CATALOGUE.analytes["egfr-computed"].plausible is None


def test_a_negative_creatinine_is_impossible() -> None:
    rule, message = _as_sent("http://loinc.org", "2160-0", "-0.6", "mg/dL")
    assert rule == IMPOSSIBLE
    assert message == "-0.6 mg/dL is impossible: serum creatinine is never below 0 mg/dL"


def test_a_negative_24h_protein_is_impossible_in_the_unit_sent_and_the_canonical_one() -> None:
    # -1.2 g/(24.h) x 1000 = -1200 mg/(24.h)
    rule, message = _as_sent("http://loinc.org", "2889-4", "-1.2", "g/(24.h)")
    assert rule == IMPOSSIBLE
    assert message == ("-1.2 g/(24.h) (-1200 mg/(24.h)) is impossible: 24 h urine protein is "
                       "never below 0 mg/(24.h)")


def test_60_mg_dl_of_creatinine_names_the_umol_l_it_likely_is() -> None:
    # 60 umol/L / 88.4 = 0.67873... mg/dL, 0.68 to two decimals; 60 mmol/L would be 678.7 mg/dL
    rule, message = _as_sent("http://loinc.org", "2160-0", "60", "mg/dL")
    assert rule == IMPLAUSIBLE
    assert message == ("60 mg/dL is implausible for serum creatinine (plausible 0.05 to 20 "
                       "mg/dL); 60 umol/L is 0.68 mg/dL: check the unit")


def test_a_value_sent_in_umol_l_is_judged_in_mg_dl() -> None:
    # 5304 umol/L / 88.4 = 60 mg/dL exactly: implausible; read as mg/dL (5304) or mmol/L
    # (60,000 mg/dL) it is no better, so no unit is named
    rule, message = _as_sent("http://loinc.org", "14682-9", "5304", "umol/L")
    assert rule == IMPLAUSIBLE
    assert message == ("5304 umol/L (60 mg/dL) is implausible for serum creatinine (plausible "
                       "0.05 to 20 mg/dL)")
    # 1768 umol/L / 88.4 = 20 mg/dL: the bound itself is plausible
    assert _as_sent("http://loinc.org", "14682-9", "1768", "umol/L") == ("", None)


def test_a_canonical_value_that_does_not_end_is_shown_to_4_significant_digits() -> None:
    # 1.1 umol/L / 88.4 = 0.0124434... mg/dL; read as mg/dL, 1.1 would be plausible
    rule, message = _as_sent("http://loinc.org", "14682-9", "1.1", "umol/L")
    assert rule == IMPLAUSIBLE
    assert message == ("1.1 umol/L (0.01244 mg/dL) is implausible for serum creatinine "
                       "(plausible 0.05 to 20 mg/dL); 1.1 mg/dL would be plausible: check the "
                       "unit")


@pytest.mark.parametrize(("code", "number", "unit", "hint"), [
    # 30 g/L / 10 = 3 g/dL
    ("1751-7", "30", "g/dL", "30 g/L is 3 g/dL"),
    # 0.5 ukat/L x 60 = 30 U/L ([IU]/L converts as U/L does, so it is no other reading)
    ("1742-6", "0.5", "U/L", "0.5 ukat/L is 30 U/L"),
    # 25000 g / 1000 = 25 kg
    ("29463-7", "25000", "kg", "25000 g is 25 kg"),
    # 2000 mg/g / 1000 = 2 mg/mg
    ("2890-2", "2000", "mg/mg", "2000 mg/g is 2 mg/mg"),
])
def test_a_unit_mix_up_is_named(code: str, number: str, unit: str, hint: str) -> None:
    rule, message = _as_sent("http://loinc.org", code, number, unit)
    assert rule == IMPLAUSIBLE
    assert message is not None and message.endswith(f"; {hint}: check the unit")


@pytest.mark.parametrize(("value", "comparator", "outside"), [
    ("0.05", None, False),   # the low bound is plausible (inclusive)
    ("0.049", None, True),
    ("20", None, False),     # the high bound too
    ("20.001", None, True),
    ("0.05", "<", True),     # every value below 0.05 is below the range
    ("0.05", "<=", False),   # 0.05 itself is plausible
    ("0.1", "<", False),     # 0.07 would be plausible
    ("20", ">", True),       # every value above 20
    ("20", ">=", False),
    ("25", "<", False),      # a detection limit above the range says nothing implausible
    ("0.01", ">", False),
])
def test_a_censored_value_is_outside_only_when_all_it_stands_for_is(
        value: str, comparator: str | None, outside: bool) -> None:
    assert outside_plausible(CREATININE, Decimal(value), comparator) is outside


def test_a_censored_value_at_the_minimum_is_impossible_only_below_it() -> None:
    # "<0": every value it stands for is negative; "<=0" and "0" allow 0
    def rule(comparator: str | None) -> str | None:
        verdict = judge(CREATININE, Decimal(0), comparator)
        return verdict.rule if verdict else None

    assert rule("<") == IMPOSSIBLE
    assert rule("<=") == IMPLAUSIBLE  # 0 is possible, and below the range of 0.05 to 20
    assert rule(None) == IMPLAUSIBLE
    assert judge(CATALOGUE.analytes["urine-protein-24h"], Decimal(0), None) is None
