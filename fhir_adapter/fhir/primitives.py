"""FHIR primitives read from JSON: dateTime with its precision, decimal without float drift."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

__all__ = ["DECIMAL_DIGITS", "FhirDateTime", "Precision", "decimal_problem", "parse_datetime",
           "to_decimal"]

Precision = Literal["year", "month", "day", "time"]

#: The most digits a decimal the trial model keeps may have before its point, and how far after
#: it its last digit may be: what the store and the endpoint arithmetic hold exactly. R4 leaves
#: decimals unbounded (its own example Observation-decimal holds 1E-245) but says the limits of
#: XML Schema apply (datatypes.html#decimal), whose xs:decimal a processor need carry to 18
#: digits only; the adapter's unit conversions carry 34 significant digits (decimal128), so
#: nothing finer than 34 places is kept. A double written in full (0.008946854200584387, as
#: Synthea writes them) fits; 1e300, 1e-300 or 3.4028235e38 do not. Checked where quantities are
#: read into the trial model (``mapping``), not by the base R4 validation.
DECIMAL_DIGITS = (18, 34)

_DATETIME = re.compile(
    r"(?P<year>[0-9]{4})(-(?P<month>[0-9]{2})(-(?P<day>[0-9]{2})"
    r"(T(?P<time>[0-9]{2}:[0-9]{2}(:[0-9]{2}(?P<frac>\.[0-9]+)?)?)"
    r"(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?"
)


@dataclass(frozen=True, slots=True)
class FhirDateTime:
    """A FHIR date or dateTime: ``value`` is an aware datetime for ``time`` precision, else a date.

    For ``year`` and ``month`` precision the date is the first day of the period.
    """

    text: str
    precision: Precision
    value: date

    @property
    def at(self) -> datetime | None:
        """The aware datetime when the value has a time of day, else None."""
        return self.value if isinstance(self.value, datetime) else None


def parse_datetime(text: object) -> FhirDateTime:
    """Parse a FHIR date, dateTime or instant; ValueError with a plain reason when it is none."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a date or dateTime string")
    m = _DATETIME.fullmatch(text)
    if m is None:
        raise ValueError(
            f"{text!r} is not a FHIR dateTime (YYYY, YYYY-MM, YYYY-MM-DD or "
            "YYYY-MM-DDThh:mm:ss+zz:zz)"
        )
    year = int(m["year"])
    try:
        if m["month"] is None:
            return FhirDateTime(text, "year", date(year, 1, 1))
        if m["day"] is None:
            return FhirDateTime(text, "month", date(year, int(m["month"]), 1))
        day = date(year, int(m["month"]), int(m["day"]))
        if m["time"] is None:
            return FhirDateTime(text, "day", day)
        if m["zone"] is None:
            raise ValueError(f"{text!r} has a time of day but no time zone")
        clock = m["time"] if m["time"].count(":") == 2 else m["time"] + ":00"
        frac = m["frac"] or ""
        clock = clock.removesuffix(frac) + (frac[:7] if frac else "")
        zone = "+00:00" if m["zone"] == "Z" else m["zone"]
        return FhirDateTime(
            text, "time", datetime.fromisoformat(f"{day.isoformat()}T{clock}{zone}")
        )
    except ValueError as exc:
        if "time zone" in str(exc):
            raise
        raise ValueError(f"{text!r} is not a valid date or time ({exc})") from None


def decimal_problem(value: Any, kind: str = "decimal") -> str | None:
    """Why the JSON number ``value`` is a decimal the adapter cannot hold (see
    ``DECIMAL_DIGITS``), or None. The one check of a number's size, made at the door."""
    try:
        number = to_decimal(value)
    except ValueError as exc:
        return str(exc)
    if not number:
        return None
    whole, places = DECIMAL_DIGITS
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite: to_decimal refuses the others
    if number.adjusted() >= whole:
        return f"{kind} {_shown(value)} has more than {whole} digits before its point"
    if -exponent > places:
        return f"{kind} {_shown(value)} has more than {places} digits after its point"
    return None


def _shown(value: Any) -> str:
    text = str(value) if isinstance(value, Decimal) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def to_decimal(value: Any) -> Decimal:
    """A JSON number as an exact Decimal.

    A float parsed from JSON is read through its shortest round-trip text, which is the decimal
    that was written for every value of up to 15 significant digits (``88.4`` stays ``88.4``).
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a number") from None
        if number.is_finite():
            return number
    raise ValueError(f"{value!r} is not a number")
