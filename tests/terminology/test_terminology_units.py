"""Unit conversions of TRIAL.md section 5, each against a value worked out by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fhir_adapter.errors import UnitError
from fhir_adapter.paths import mappings_dir
from fhir_adapter.terminology import convert, quantity_unit
from fhir_adapter.trial.definitions import AnalyteCatalogue

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATALOGUE = AnalyteCatalogue.from_file(mappings_dir() / "analytes.toml")


def _accepted(code: str):
    found = CATALOGUE.lookup(LOINC, code)
    assert found is not None, code
    return found[1]


# (code, value, unit, expected in the canonical unit, worked out by hand)
CASES = [
    ("2160-0", "0.61", "mg/dL", "0.61"),
    ("14682-9", "88.4", "umol/L", "1"),  # 88.4 / 88.4
    ("14682-9", "53.04", "umol/L", "0.6"),  # 53.04 / 88.4
    ("14682-9", "0.0884", "mmol/L", "1"),  # 0.0884 x 1000 / 88.4
    ("3094-0", "14", "mg/dL", "29.96"),  # BUN 14 x 2.14
    ("6299-2", "10", "mg/dL", "21.4"),  # BUN in blood, as Synthea files it: 10 x 2.14
    ("22664-7", "5", "mmol/L", "30.03"),  # 5 x 6.006
    ("14937-7", "5", "mmol/L", "30.03"),
    ("2889-4", "1.2", "g/(24.h)", "1200"),
    ("2889-4", "350", "mg/(24.h)", "350"),
    ("2890-2", "200", "mg/g", "0.2"),
    ("2890-2", "22.624", "mg/mmol", "0.2"),  # 22.624 / 113.12
    ("2890-2", "0.2", "g/g", "0.2"),
    ("1742-6", "0.5", "ukat/L", "30"),  # 0.5 x 60
    ("1920-8", "35", "[IU]/L", "35"),
    ("1751-7", "40", "g/L", "4"),
    ("33939-0", "3.1", "ng/L", "3.1"),
    ("8302-2", "1.2", "m", "120"),
    ("8302-2", "48", "[in_i]", "121.92"),  # 48 x 2.54
    ("29463-7", "2000", "g", "2"),
    ("29463-7", "10", "[lb_av]", "4.5359237"),
]


@pytest.mark.parametrize(("code", "value", "unit", "expected"), CASES)
def test_conversion(code: str, value: str, unit: str, expected: str) -> None:
    assert convert(Decimal(value), unit, _accepted(code)) == Decimal(expected)


def test_a_quotient_that_does_not_end_is_not_rounded_to_places() -> None:
    got = convert(Decimal("0.09"), "mmol/L", _accepted("14682-9"))
    # 90 / 88.4 = 1.01809954751131221719... mg/dL
    assert got.quantize(Decimal("0.001")) == Decimal("1.018")
    assert str(got).startswith("1.0180995475113122171945701357")
    assert got * Decimal("88.4") - Decimal("90") < Decimal("1e-25")


def test_unit_read_from_the_ucum_code() -> None:
    quantity = {"value": 1, "unit": "micromol per litre", "system": UCUM, "code": "umol/L"}
    assert quantity_unit(quantity, _accepted("14682-9"), UCUM) == (
        "umol/L",
        "Observation.valueQuantity.code",
    )


def test_unit_given_only_as_a_string() -> None:
    assert quantity_unit({"value": 1, "unit": "mg/dL"}, _accepted("2160-0"), UCUM) == (
        "mg/dL",
        "Observation.valueQuantity.unit",
    )


@pytest.mark.parametrize(
    ("quantity", "element", "named"),
    [
        ({"value": 1, "unit": "mg", "system": UCUM, "code": "mg"}, "code", "'mg'"),
        ({"value": 1, "unit": "milligram per decilitre"}, "unit", "'milligram per decilitre'"),
        ({"value": 1, "system": "http://example.org/units", "code": "MGDL"}, "code", "'MGDL'"),
        ({"value": 1}, None, "no unit"),
    ],
)
def test_an_unconvertible_unit_is_named(quantity: dict, element: str | None, named: str) -> None:
    with pytest.raises(UnitError) as caught:
        quantity_unit(quantity, _accepted("2160-0"), UCUM)
    error = caught.value
    assert named in error.message
    assert "mg/dL" in error.message  # what would have been accepted
    expected = "Observation.valueQuantity" + (f".{element}" if element else "")
    assert error.where.element == expected
    assert error.issues[0].expression == expected
    assert error.http_status == 422


def test_convert_refuses_a_unit_the_code_does_not_list() -> None:
    with pytest.raises(UnitError, match="'mg/dL'") as caught:
        convert(Decimal(1), "mg/dL", _accepted("14682-9"))
    assert caught.value.where.element == "Observation.valueQuantity.code"
