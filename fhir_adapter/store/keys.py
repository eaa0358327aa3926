"""Identity keys of a resource (TRIAL.md section 4) and small value helpers of the store."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "KEY_MAX",
    "content_hash",
    "describe_key",
    "from_db_time",
    "identifier_key",
    "identifier_prefix",
    "identity_keys",
    "is_identifier_key",
    "names_identifier",
    "sender_id_key",
    "to_utc",
    "uuid_key",
]

# The three kinds of identity key, strongest first (TRIAL.md section 4); this module is the
# only one that spells or reads them:
#   ident|Type|system|value    an identifier
#   id|Type|sender|id          the sender's own id
#   uuid|Type|uuid             a urn:uuid fullUrl (lower case)
_IDENT, _ID, _UUID = "ident", "id", "uuid"
_UUID_PREFIX = "urn:uuid:"


#: The longest key kept as written; a longer one (an identifier of hundreds of characters,
#: which R4 allows) is kept as the SHA-256 of its text, so that every database holds it alike
#: (``resource_key.key`` and ``measurement.specimen_key`` are VARCHAR(600)).
KEY_MAX = 512


def _bounded(kind: str, resource_type: str, rest: str) -> str:
    key = f"{kind}|{resource_type}|{rest}"
    if len(key) <= KEY_MAX:
        return key
    return f"{kind}|{resource_type}|sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def identifier_key(resource_type: str, system: str, value: str) -> str:
    return _bounded(_IDENT, resource_type, f"{system}|{value}")


def identifier_prefix(resource_type: str) -> str:
    """What every identifier key of a type starts with (a search by value in any system)."""
    return f"{_IDENT}|{resource_type}|"


def sender_id_key(resource_type: str, sender: str, resource_id: str) -> str:
    return _bounded(_ID, resource_type, f"{sender}|{resource_id}")


def uuid_key(resource_type: str, full_url: str) -> str | None:
    """The key of a ``urn:uuid:`` fullUrl; None for any other fullUrl."""
    if not full_url.startswith(_UUID_PREFIX):
        return None
    return _bounded(_UUID, resource_type, full_url[len(_UUID_PREFIX):].lower())


def is_identifier_key(key: str, resource_type: str, system: str | None, value: str) -> bool:
    """Whether ``key`` is the identifier ``system|value`` of a type (any system when None)."""
    if system:
        return key == identifier_key(resource_type, system, value)
    return key.startswith(identifier_prefix(resource_type)) and key.endswith(f"|{value}")


def names_identifier(key: str) -> bool:
    """Whether ``key`` is an identifier key (of any type)."""
    return key.startswith(f"{_IDENT}|")


def describe_key(key: str) -> str:
    """A key as a sender would name it: ``identifier s|v``, ``id x``, ``fullUrl urn:uuid:u``."""
    kind, _, rest = key.partition("|")
    if kind == _IDENT:
        return "identifier " + rest.split("|", 1)[1]
    if kind == _ID:
        return "id " + rest.rsplit("|", 1)[1]
    if kind == _UUID:
        return _UUID_PREFIX.join(("fullUrl ", rest.split("|", 1)[1]))
    return key.lstrip("@")


def identity_keys(
    resource: dict[str, Any], *, sender: str, full_url: str | None = None
) -> list[str]:
    """Every key naming this resource, strongest first: identifiers, sender and id, urn:uuid."""
    rtype = str(resource.get("resourceType", ""))
    keys: list[str] = []
    identifiers = resource.get("identifier")  # keyed before validation: any JSON may be here
    for ident in identifiers if isinstance(identifiers, list) else []:
        if isinstance(ident, dict) and ident.get("system") and ident.get("value"):
            keys.append(identifier_key(rtype, str(ident["system"]), str(ident["value"])))
    if resource.get("id"):
        keys.append(sender_id_key(rtype, sender, str(resource["id"])))
    uuid = uuid_key(rtype, full_url) if isinstance(full_url, str) else None
    if uuid is not None:
        keys.append(uuid)
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
