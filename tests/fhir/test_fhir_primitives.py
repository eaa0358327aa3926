"""FHIR dateTime precision and exact decimals from JSON numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from fhir_adapter.fhir.primitives import parse_datetime, to_decimal


@pytest.mark.parametrize(
    ("text", "precision", "value"),
    [
        ("2024", "year", date(2024, 1, 1)),
        ("2024-03", "month", date(2024, 3, 1)),
        ("2024-03-24", "day", date(2024, 3, 24)),
        ("2024-03-24T08:30:00Z", "time", datetime(2024, 3, 24, 8, 30, tzinfo=UTC)),
        (
            "2024-03-24T08:30:00.123456789+03:30",
            "time",
            datetime(2024, 3, 24, 8, 30, 0, 123456, tzinfo=timezone(timedelta(hours=3.5))),
        ),
    ],
)
def test_precision_is_kept(text: str, precision: str, value: date) -> None:
    parsed = parse_datetime(text)
    assert parsed.precision == precision
    assert parsed.value == value
    assert (parsed.at is not None) == (precision == "time")


@pytest.mark.parametrize("text", ["2024-03-24T08:30:00", "2024-02-30", "24-03-2024", "", 20240324])
def test_not_a_fhir_datetime(text: object) -> None:
    with pytest.raises(ValueError):
        parse_datetime(text)


def test_a_time_without_zone_is_named() -> None:
    with pytest.raises(ValueError, match="time zone"):
        parse_datetime("2024-03-24T08:30:00")


@pytest.mark.parametrize(
    ("given", "expected"),
    [(88.4, "88.4"), (0.09, "0.09"), (14, "14"), ("1.00", "1.00"), (1e-7, "1E-7")],
)
def test_decimals_are_exact(given: object, expected: str) -> None:
    assert to_decimal(given) == Decimal(expected)


@pytest.mark.parametrize("given", [True, None, "abc", float("nan"), "Infinity", [1]])
def test_not_a_number(given: object) -> None:
    with pytest.raises(ValueError):
        to_decimal(given)
