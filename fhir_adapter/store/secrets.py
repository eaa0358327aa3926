"""Secrets the adapter generates once and keeps in its database (the pseudonym key)."""

from __future__ import annotations

import secrets

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from fhir_adapter.store.base import UnitBase
from fhir_adapter.store.keys import to_utc
from fhir_adapter.store.schema import adapter_secret

__all__ = ["PSEUDONYM_KEY", "read_secret", "secret"]

#: The name of the key that makes published ids (HMAC of the adapter's keys).
PSEUDONYM_KEY = "pseudonym-key"
_BYTES = 32


def read_secret(unit: UnitBase, name: str) -> bytes | None:
    """The stored secret ``name``, or None when it was never made."""
    value = unit.conn.execute(
        select(adapter_secret.c.value).where(adapter_secret.c.name == name)
    ).scalar()
    return None if value is None else bytes.fromhex(str(value))


def secret(unit: UnitBase, name: str) -> tuple[bytes, bool]:
    """The secret ``name``, made (random, 32 bytes) in this unit when it does not exist yet.

    Returns ``(secret, created)``. Two processes making it at once: the primary key lets one
    win, the other reads the winner's value."""
    found = read_secret(unit, name)
    if found is not None:
        return found, False
    value = secrets.token_hex(_BYTES)
    try:
        with unit.conn.begin_nested():
            unit.conn.execute(insert(adapter_secret).values(
                name=name, value=value, created_at=to_utc(unit.now())))
    except IntegrityError:
        winner = read_secret(unit, name)
        assert winner is not None
        return winner, False
    return bytes.fromhex(value), True
