"""Place a FHIR date or dateTime on the study's time line (a date alone: local midnight)."""

from __future__ import annotations

from datetime import date, datetime, time, tzinfo

from fhir_adapter.errors import InvalidResource, Where
from fhir_adapter.fhir.primitives import parse_datetime

__all__ = ["at_midnight", "place"]


def place(text: object, element: str, zone: tzinfo) -> tuple[datetime, bool]:
    """(aware datetime, day_precision) of a FHIR dateTime string found at ``element``.

    A date alone is midnight of that day in ``zone`` (day precision). A year or a month cannot
    be placed in a visit window: InvalidResource.
    """
    try:
        parsed = parse_datetime(text)
    except ValueError as exc:
        raise InvalidResource(str(exc), where=Where(element=element)) from None
    if parsed.at is not None:
        return parsed.at, False
    if parsed.precision == "day":
        return at_midnight(parsed.value, zone), True
    raise InvalidResource(
        f"{parsed.text!r} gives only the {parsed.precision}: a time to place in the study's "
        "visits needs at least a full date",
        where=Where(element=element),
    )


def at_midnight(day: date, zone: tzinfo) -> datetime:
    """Midnight starting ``day`` in ``zone``."""
    return datetime.combine(day, time(0), tzinfo=zone)
