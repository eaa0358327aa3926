"""The one place that says how published endpoint numbers are rounded (computing stays exact)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import overload

__all__ = ["PLACES", "WORK_PRECISION", "publish"]

#: Significant digits used for square roots and non-integer powers (eGFR, BSA).
WORK_PRECISION = 34

#: Decimal places of each published quantity. Values, baselines and changes of measured analytes
#: are published exactly as measured (no rounding): they are differences of FHIR decimals.
#: Categories (CTCAE grade, creatinine category, remission) are decided on the exact numbers,
#: before any rounding; only what is published is rounded, half up.
PLACES: dict[str, int] = {
    "percent": 2,  # percent change, %
    "fold": 3,  # fold change (visit / baseline)
    "fold_uln": 2,  # value / ULN
    "egfr": 1,  # computed eGFR, its baseline and its change, mL/min/{1.73_m2}
    "rate": 2,  # 24 h urine protein per body surface, mg/(m2.h)
}


@overload
def publish(value: Decimal, kind: str) -> Decimal: ...
@overload
def publish(value: None, kind: str) -> None: ...
@overload
def publish(value: Decimal | None, kind: str) -> Decimal | None: ...
def publish(value: Decimal | None, kind: str) -> Decimal | None:
    """Round an exact value for publication, half up, to the places of ``kind``."""
    if value is None:
        return None
    with localcontext() as ctx:
        # enough digits for the whole number and its places: a quantize beyond the context's
        # precision raises InvalidOperation (a ratio of extreme values needs more than 34)
        ctx.prec = max(WORK_PRECISION, value.adjusted() + PLACES[kind] + 2)
        return value.quantize(Decimal(1).scaleb(-PLACES[kind]), rounding=ROUND_HALF_UP)
