"""Which of two versions of a resource is the older: an old export sent again is not kept."""

from __future__ import annotations

from datetime import datetime
from typing import Any

__all__ = ["OLDER", "older_than_kept"]


#: What dates a version of a resource, strongest first: when the sender last changed it, and
#: for an Observation when this version of the result was made available (a correction is
#: issued later than what it corrects).
_VERSION_TIMES = (("meta", "lastUpdated"), ("issued",))


OLDER = "older than the kept version"


def older_than_kept(incoming: dict[str, Any], kept: dict[str, Any]) -> str | None:
    """Why ``incoming`` is an older version than the one kept, or None when it is not.

    The first of ``meta.lastUpdated`` and ``issued`` that both carry decides; when neither
    does, the version received later is the newer one. So an EHR that sends an old export
    again (the original of a value corrected since) cannot undo the correction."""
    for path in _VERSION_TIMES:
        new, old = _instant(incoming, path), _instant(kept, path)
        if new is None or old is None:
            continue
        if new[0] < old[0]:
            name = ".".join(path)
            return f"{name} {new[1]} is before {old[1]}, that of the kept version"
        return None
    return None


def _instant(resource: dict[str, Any], path: tuple[str, ...]) -> tuple[datetime, str] | None:
    value: Any = resource
    for step in path:
        value = value.get(step) if isinstance(value, dict) else None
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment, value) if moment.tzinfo is not None else None
