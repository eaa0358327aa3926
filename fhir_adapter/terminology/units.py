"""Units: read a Quantity's UCUM unit (the one rule of unit acceptance), convert its value."""

from __future__ import annotations

from decimal import Context, Decimal
from typing import Any

from fhir_adapter.errors import Issue, UnitError, Where
from fhir_adapter.trial.definitions import AcceptedCode

__all__ = ["convert", "quantity_unit"]

#: Precision of a conversion that divides (a quotient that does not end is cut at 34 digits).
_CONTEXT = Context(prec=34)
_ONE = Decimal(1)


def quantity_unit(
    quantity: dict[str, Any],
    accepted: AcceptedCode,
    ucum_system: str,
    *,
    element: str = "Observation.valueQuantity",
    default: str | None = None,
) -> tuple[str, str]:
    """The UCUM unit of ``quantity`` and the element it was read from.

    ``code`` is read when ``system`` is UCUM; else ``unit`` when that string is a unit the code
    accepts; else ``default`` (for a reference range written without a unit). Anything else
    raises UnitError naming the unit. A ``code`` of another system (or of none) is not read as
    UCUM: a Quantity's code means what its ``system`` says (FHIR R4 datatypes.html#Quantity,
    invariant qty-3: a code needs its system).
    """
    code, system, text = quantity.get("code"), quantity.get("system"), quantity.get("unit")
    if isinstance(code, str) and code and system == ucum_system:
        if code not in accepted.units:
            raise _unit_error(
                f"the unit {code!r} cannot be converted for {accepted.code}",
                f"{element}.code",
                accepted,
            )
        return code, f"{element}.code"
    if isinstance(text, str) and text in accepted.units:
        return text, f"{element}.unit"
    if code is None and text is None and default is not None:
        return default, element
    if isinstance(code, str) and code:
        named = f"{code!r} of system {system!r}" if system else f"{code!r} (no system)"
        where = f"{element}.code"
    elif isinstance(text, str) and text:
        named, where = repr(text), f"{element}.unit"
    else:
        raise _unit_error(f"{element} has no unit", element, accepted)
    raise _unit_error(
        f"the unit {named} is not a UCUM unit accepted for {accepted.code}", where, accepted
    )


def convert(
    value: Decimal,
    unit: str,
    accepted: AcceptedCode,
    *,
    element: str = "Observation.valueQuantity.code",
) -> Decimal:
    """``value`` in ``unit`` -> the canonical unit: value x multiplier / divisor.

    Exact where the quotient ends (88.4 umol/L -> 1 mg/dL); else 34 significant digits.
    Raises UnitError naming ``unit`` when the accepted code does not list it.
    """
    try:
        multiplier, divisor = accepted.units[unit]
    except KeyError:
        raise _unit_error(
            f"the unit {unit!r} cannot be converted for {accepted.code}", element, accepted
        ) from None
    if multiplier == _ONE and divisor == _ONE:
        return value
    product = _CONTEXT.multiply(value, multiplier)
    if divisor == _ONE:
        return product
    return _CONTEXT.divide(product, divisor)


def _unit_error(message: str, element: str, accepted: AcceptedCode) -> UnitError:
    known = ", ".join(sorted(accepted.units))
    text = f"{message} (accepted: {known})"
    return UnitError(
        text, where=Where(element=element), issues=[Issue("error", "value", element, text)]
    )
