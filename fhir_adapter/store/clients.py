"""SMART Backend Services clients, the assertions they spent, and the access tokens issued."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from fhir_adapter.errors import ConfigError
from fhir_adapter.store.database import Store
from fhir_adapter.store.keys import from_db_time, to_utc
from fhir_adapter.store.schema import smart_access_token, smart_assertion, smart_client

__all__ = ["AccessGrant", "ClientRegistry", "ClientRow", "token_digest"]


@dataclass(frozen=True, slots=True)
class ClientRow:
    """One registered client: its id, its keys (a JWKS, or the URL to fetch it from), the
    scopes it may be granted (SMART v2 spelling, space-separated)."""

    client_id: str
    jwks: dict[str, Any] | None
    jwks_url: str | None
    scopes: str
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """What an issued access token stands for, read back when it is presented."""

    client: ClientRow
    scopes: str
    expires_at: datetime


def token_digest(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _row(r: Any) -> ClientRow:
    return ClientRow(r.client_id, dict(r.jwks) if r.jwks is not None else None, r.jwks_url,
                     r.scopes, from_db_time(r.created_at),
                     from_db_time(r.revoked_at) if r.revoked_at is not None else None)


class ClientRegistry:
    """The clients and tokens of one store; every server process reading the same database
    sees a registration, a revocation or a spent ``jti`` at once."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- clients -------------------------------------------------------------------------
    def add(self, client: ClientRow) -> None:
        try:
            with self.store.transaction() as unit:
                unit.conn.execute(insert(smart_client).values(
                    client_id=client.client_id, jwks=client.jwks, jwks_url=client.jwks_url,
                    scopes=client.scopes, created_at=to_utc(client.created_at)))
        except IntegrityError as exc:
            raise ConfigError(f"a client named {client.client_id!r} is already registered "
                              "(revoke it, or choose another name)") from exc

    def any(self) -> bool:
        """True when at least one client was ever registered (revoked ones count)."""
        with self.store.read() as unit:
            return unit.conn.execute(select(smart_client.c.client_id).limit(1)).first() \
                is not None

    def get(self, client_id: str) -> ClientRow | None:
        with self.store.read() as unit:
            found = unit.conn.execute(
                select(smart_client).where(smart_client.c.client_id == client_id)).first()
        return _row(found) if found is not None else None

    def all(self) -> list[ClientRow]:
        with self.store.read() as unit:
            rows = unit.conn.execute(select(smart_client).order_by(smart_client.c.created_at,
                                                                   smart_client.c.client_id))
            return [_row(r) for r in rows]

    def revoke(self, client_id: str, at: datetime) -> ClientRow:
        """Mark the client revoked: its access tokens are refused from their next use (they
        are kept until they expire, so that the refusal can say why)."""
        with self.store.transaction() as unit:
            found = unit.conn.execute(
                select(smart_client).where(smart_client.c.client_id == client_id)).first()
            if found is None:
                names = unit.conn.execute(select(smart_client.c.client_id)).scalars()
                known = ", ".join(sorted(names)) or "none"
                raise ConfigError(f"no client named {client_id!r} (clients: {known})")
            if found.revoked_at is not None:
                raise ConfigError(f"the client {client_id!r} was already revoked at "
                                  f"{from_db_time(found.revoked_at).isoformat()}")
            unit.conn.execute(update(smart_client)
                              .where(smart_client.c.client_id == client_id)
                              .values(revoked_at=to_utc(at)))
        revoked = self.get(client_id)
        assert revoked is not None
        return revoked

    # -- assertions and tokens -------------------------------------------------------------
    def issue(self, client_id: str, jti: str, assertion_expires: datetime, *, secret: str,
              scopes: str, now: datetime, expires_at: datetime) -> bool:
        """Spend the assertion's ``jti`` and record the access token, in one transaction.

        False (and nothing issued) when this client already spent that ``jti`` and it has not
        expired: a replay. Expired ``jti``s and tokens are removed on the way."""
        try:
            with self.store.transaction() as unit:
                moment = to_utc(now)
                unit.conn.execute(delete(smart_assertion)
                                  .where(smart_assertion.c.expires_at < moment))
                unit.conn.execute(delete(smart_access_token)
                                  .where(smart_access_token.c.expires_at < moment))
                unit.conn.execute(insert(smart_assertion).values(
                    client_id=client_id, jti=jti, expires_at=to_utc(assertion_expires)))
                unit.conn.execute(insert(smart_access_token).values(
                    digest=token_digest(secret), client_id=client_id, scopes=scopes,
                    issued_at=moment, expires_at=to_utc(expires_at)))
        except IntegrityError:
            return False
        return True

    def grant_of(self, secret: str) -> AccessGrant | None:
        """The grant behind a presented access token (its client as registered now), or None."""
        with self.store.read() as unit:
            found = unit.conn.execute(
                select(smart_access_token.c.scopes, smart_access_token.c.expires_at,
                       smart_client)
                .join(smart_client, smart_client.c.client_id == smart_access_token.c.client_id)
                .where(smart_access_token.c.digest == token_digest(secret))).first()
        if found is None:
            return None
        return AccessGrant(_row(found), found.scopes, from_db_time(found.expires_at))
