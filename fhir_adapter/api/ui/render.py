"""The templates of the dashboard (shipped in the package) and the filters they use."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

__all__ = ["render"]


def _days(offset: timedelta | None) -> str:
    if offset is None:
        return ""
    return f"{offset.total_seconds() / 86400:.1f}"


def _number(value: Decimal | None) -> str:
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _time(at: datetime | None, zone: Any = None) -> str:
    if at is None:
        return ""
    return (at.astimezone(zone) if zone else at).isoformat(timespec="minutes")


_ENV = Environment(loader=PackageLoader("fhir_adapter.api.ui", "templates"),
                   autoescape=select_autoescape(("html",)), trim_blocks=True,
                   lstrip_blocks=True)
_ENV.filters.update(days=_days, number=_number, time=_time)


def render(template: str, **context: Any) -> str:
    return _ENV.get_template(template).render(**context)
