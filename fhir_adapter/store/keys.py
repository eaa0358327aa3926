"""Identity keys of a resource (TRIAL.md section 4) and small value helpers of the store."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

__all__ = ["content_hash", "identifier_key", "identity_keys", "to_utc", "from_db_time"]

_UUID_PREFIX = "urn:uuid:"


def identifier_key(resource_type: str, system: str, value: str) -> str:
    return f"ident|{resource_type}|{system}|{value}"


def identity_keys(
    resource: dict[str, Any], *, sender: str, full_url: str | None = None
) -> list[str]:
    """Every key naming this resource, strongest first: identifiers, sender and id, urn:uuid."""
    rtype = str(resource.get("resourceType", ""))
    keys: list[str] = []
    for ident in resource.get("identifier") or []:
        if isinstance(ident, dict) and ident.get("system") and ident.get("value"):
            keys.append(identifier_key(rtype, str(ident["system"]), str(ident["value"])))
    if resource.get("id"):
        keys.append(f"id|{rtype}|{sender}|{resource['id']}")
    if full_url and full_url.startswith(_UUID_PREFIX):
        keys.append(f"uuid|{rtype}|{full_url[len(_UUID_PREFIX):].lower()}")
    return list(dict.fromkeys(keys))


def content_hash(resource: dict[str, Any]) -> str:
    """A hash of the content that matters: ``meta`` (versions, lastUpdated) left out."""
    body = {k: v for k, v in resource.items() if k != "meta"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def to_utc(moment: datetime) -> datetime:
    """An aware datetime in UTC (naive input is refused: FHIR times always carry a zone)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return moment.astimezone(UTC)


def from_db_time(moment: datetime) -> datetime:
    """SQLite returns naive UTC values; PostgreSQL aware ones. Both become aware UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
