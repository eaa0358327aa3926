"""Plausibility of a value in its analyte's canonical unit: impossible, implausible, or neither.

The bounds are data (``minimum`` and ``plausible`` of each analyte in ``mappings/analytes.toml``);
this is the one comparison of them: the validator refuses (or warns) at the door with it, and the
data manager's queries list what was kept outside the range with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from fhir_adapter.terminology.units import convert
from fhir_adapter.trial.definitions import AcceptedCode, Analyte

__all__ = ["IMPOSSIBLE", "IMPLAUSIBLE", "Verdict", "judge", "outside_plausible"]

#: the rule names an issue carries (operationoutcome-message-id)
IMPOSSIBLE = "physical-minimum"
IMPLAUSIBLE = "plausible-range"

#: a censored value (``<``, ``<=``, ``>``, ``>=``) stands for every value on one side of it
Comparator = Literal["<", "<=", ">", ">="]


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why a value is not believable: ``rule`` (IMPOSSIBLE or IMPLAUSIBLE) and the sentence."""

    rule: str
    message: str


def outside_plausible(analyte: Analyte, value: Decimal, comparator: str | None = None) -> bool:
    """Whether every value ``value`` (with its comparator) stands for is outside the analyte's
    plausible range: ``<5`` is outside [10, 20], ``<15`` is not, ``>25`` is."""
    if analyte.plausible is None:
        return False
    low, high = analyte.plausible
    return _below(value, comparator, low) or _above(value, comparator, high)


def judge(
    analyte: Analyte,
    value: Decimal,
    comparator: str | None,
    *,
    received: tuple[Decimal, str, AcceptedCode] | None = None,
) -> Verdict | None:
    """The verdict on ``value`` (canonical unit), or None when it is believable.

    ``received``: the value as sent, its unit and the accepted code that read it, to say the
    value as sent and to name a likely unit mix-up (the value read in another unit the analyte
    accepts that would be plausible)."""
    unit = analyte.unit
    sent = f"{_text(received[0])} {received[1]}" if received else f"{_text(value)} {unit}"
    shown = sent if received is None or received[1] == unit else \
        f"{sent} ({_text(_significant(value))} {unit})"
    stated = f"{comparator}{shown}" if comparator else shown
    if analyte.minimum is not None and _below(value, comparator, analyte.minimum):
        return Verdict(IMPOSSIBLE, f"{stated} is impossible: {analyte.name} is never below "
                                   f"{_text(analyte.minimum)} {unit}")
    if not outside_plausible(analyte, value, comparator):
        return None
    assert analyte.plausible is not None
    low, high = analyte.plausible
    message = (f"{stated} is implausible for {analyte.name} (plausible {_text(low)} to "
               f"{_text(high)} {unit})")
    if received is not None and comparator is None:
        hint = _mix_up(analyte, *received)
        if hint:
            message += f"; {hint}: check the unit"
    return Verdict(IMPLAUSIBLE, message)


def _below(value: Decimal, comparator: str | None, bound: Decimal) -> bool:
    """Every value stood for lies below ``bound``: ``<b`` and ``<x`` for x < b; ``<=x`` and
    ``x`` for x < b; never ``>x`` or ``>=x``."""
    if comparator in (">", ">="):
        return False
    return value <= bound if comparator == "<" else value < bound


def _above(value: Decimal, comparator: str | None, bound: Decimal) -> bool:
    if comparator in ("<", "<="):
        return False
    if comparator == ">":
        return value >= bound
    return value > bound


def _mix_up(analyte: Analyte, number: Decimal, unit: str, accepted: AcceptedCode) -> str | None:
    """``60 umol/L is 0.68 mg/dL``: the first other unit of the analyte's codes (in the order of
    analytes.toml) that makes the number sent a plausible value, or None."""
    factor = accepted.units.get(unit)
    for code in analyte.codes:
        for other, pair in code.units.items():
            if other == unit or pair == factor:
                continue
            value = convert(number, other, code)
            if not outside_plausible(analyte, value):
                if other == analyte.unit:
                    return f"{_text(number)} {other} would be plausible"
                return f"{_text(number)} {other} is {_text(_rounded(value))} {analyte.unit}"
    return None


def _rounded(value: Decimal) -> Decimal:
    """Two decimals below 100, whole numbers above: enough to recognise a value."""
    if abs(value) >= 100:
        return value.quantize(Decimal(1))
    return value.quantize(Decimal("0.01"))


def _significant(value: Decimal) -> Decimal:
    """At most 4 significant digits after the point (1.1 umol/L is 0.01244 mg/dL, not its 34
    digits); a whole number as it is."""
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int) or exponent >= -4 or value == value.to_integral_value():
        return value
    return value.quantize(Decimal(1).scaleb(min(value.adjusted() - 3, 0)))


def _text(value: Decimal) -> str:
    """A decimal as people write it: no exponent, no trailing zeros (``0.68``, ``1200``)."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
