"""Repository of FHIR resources as received: current version, history and identity keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from fhir_adapter.errors import ConflictError
from fhir_adapter.store.base import UnitBase
from fhir_adapter.store.keys import from_db_time, to_utc
from fhir_adapter.store.schema import resource, resource_key, resource_version

__all__ = ["ResourceRepository", "SaveOutcome", "StoredResource"]

_MAX_RETRIES = 5


@dataclass(frozen=True, slots=True)
class StoredResource:
    id: str
    type: str
    version: int
    sender: str
    status: str | None
    content_hash: str
    current: dict[str, Any]
    received_at: datetime
    last_updated: datetime

    @property
    def key(self) -> str:
        """The internal key ``Type/<adapter id>``."""
        return f"{self.type}/{self.id}"


@dataclass(frozen=True, slots=True)
class SaveOutcome:
    """What saving did: created (201), updated (new version), or nothing (same content)."""

    id: str
    type: str
    version: int
    created: bool
    changed: bool
    previous: StoredResource | None = None
    last_updated: datetime | None = None  # of the version now current

    @property
    def key(self) -> str:
        return f"{self.type}/{self.id}"


class ResourceRepository(UnitBase):
    """Resources by identity key; the UNIQUE key constraint settles concurrent creates."""

    def find(self, keys: Sequence[str]) -> StoredResource | None:
        """The stored resource named by the strongest of ``keys`` that is known."""
        if not keys:
            return None
        rows = self.conn.execute(
            select(resource_key.c.key, resource_key.c.resource_id).where(
                resource_key.c.key.in_(list(keys))
            )
        ).all()
        owners = {row.key: row.resource_id for row in rows}
        for key in keys:
            if key in owners:
                return self.get_by_id(owners[key])
        return None

    def get_by_id(self, resource_id: str) -> StoredResource | None:
        row = self.conn.execute(select(resource).where(resource.c.id == resource_id)).first()
        return _stored(row) if row else None

    def get(self, resource_type: str, resource_id: str) -> StoredResource | None:
        found = self.get_by_id(resource_id)
        return found if found and found.type == resource_type else None

    def keys_of(self, resource_id: str) -> list[str]:
        return list(
            self.conn.execute(
                select(resource_key.c.key).where(resource_key.c.resource_id == resource_id)
            ).scalars()
        )

    def search_identifier(self, resource_type: str, system: str | None, value: str) -> list[str]:
        """Adapter ids of the resources of a type with this identifier (any system if None)."""
        if system:
            key = f"ident|{resource_type}|{system}|{value}"
            cond = resource_key.c.key == key
        else:
            prefix = f"ident|{resource_type}|".replace("%", r"\%").replace("_", r"\_")
            cond = resource_key.c.key.like(prefix + "%", escape="\\")
        rows = self.conn.execute(select(resource_key.c.key, resource_key.c.resource_id).where(cond))
        return sorted({r.resource_id for r in rows if system or r.key.endswith(f"|{value}")})

    def save(
        self,
        resource_type: str,
        keys: Sequence[str],
        content: dict[str, Any],
        *,
        sender: str,
        content_hash: str,
        new_id: str,
        status: str | None = None,
        received_at: datetime | None = None,
    ) -> SaveOutcome:
        """Create the resource, or add a version when its content changed, else do nothing."""
        at = to_utc(received_at or self.now())
        for _ in range(_MAX_RETRIES):
            existing = self.find(keys)
            if existing is None:
                if self._try_create(resource_type, keys, content, sender, content_hash,
                                    new_id, status, at):
                    return SaveOutcome(new_id, resource_type, 1, created=True, changed=True,
                                       last_updated=at)
                continue  # another writer created it meanwhile: now it is an update
            if existing.type != resource_type:
                raise ConflictError(
                    f"identity of this {resource_type} already names a {existing.type}"
                )
            outcome = self._try_update(existing, keys, content, sender, content_hash, status, at)
            if outcome is not None:
                return outcome
        raise ConflictError(f"{resource_type} changed concurrently too often; try again")

    def _try_create(
        self, rtype: str, keys: Sequence[str], content: dict[str, Any], sender: str,
        digest: str, new_id: str, status: str | None, at: datetime,
    ) -> bool:
        try:
            with self.conn.begin_nested():
                self.conn.execute(insert(resource).values(
                    id=new_id, type=rtype, version=1, sender=sender, status=status,
                    content_hash=digest, current=content, received_at=at, last_updated=at,
                ))
                self._insert_version(new_id, 1, sender, at, content)
                self.conn.execute(
                    insert(resource_key), [{"key": k, "resource_id": new_id} for k in keys]
                )
            return True
        except IntegrityError:
            return False

    def _try_update(
        self, existing: StoredResource, keys: Sequence[str], content: dict[str, Any],
        sender: str, digest: str, status: str | None, at: datetime,
    ) -> SaveOutcome | None:
        self._add_keys(existing.id, keys)
        if existing.content_hash == digest:
            return SaveOutcome(existing.id, existing.type, existing.version, False, False,
                               last_updated=existing.last_updated)
        version = existing.version + 1
        result = self.conn.execute(
            update(resource)
            .where(and_(resource.c.id == existing.id, resource.c.version == existing.version))
            .values(version=version, sender=sender, status=status, content_hash=digest,
                    current=content, received_at=at, last_updated=at)
        )
        if result.rowcount != 1:
            return None  # someone else added a version first: read again
        self._insert_version(existing.id, version, sender, at, content)
        return SaveOutcome(existing.id, existing.type, version, False, True, previous=existing,
                           last_updated=at)

    def _insert_version(
        self, resource_id: str, version: int, sender: str, at: datetime, content: dict[str, Any]
    ) -> None:
        self.conn.execute(insert(resource_version).values(
            resource_id=resource_id, version=version, sender=sender, received_at=at,
            content=content,
        ))

    def _add_keys(self, resource_id: str, keys: Sequence[str]) -> None:
        known = set(self.conn.execute(
            select(resource_key.c.key).where(resource_key.c.key.in_(list(keys)))
        ).scalars())
        for key in keys:
            if key in known:
                continue  # a key already naming a resource keeps naming it
            try:
                with self.conn.begin_nested():
                    self.conn.execute(insert(resource_key).values(key=key, resource_id=resource_id))
            except IntegrityError:
                continue

    def history(self, resource_id: str) -> list[tuple[int, str, datetime, dict[str, Any]]]:
        """Every version as received: (version, sender, received_at, content), oldest first."""
        rows = self.conn.execute(
            select(resource_version)
            .where(resource_version.c.resource_id == resource_id)
            .order_by(resource_version.c.version)
        )
        return [(r.version, r.sender, from_db_time(r.received_at), r.content) for r in rows]

    def count_by_type(self) -> dict[str, int]:
        rows = self.conn.execute(select(resource.c.type, func.count()).group_by(resource.c.type))
        return {str(t): int(n) for t, n in rows}


def _stored(row: Any) -> StoredResource:
    return StoredResource(
        id=row.id, type=row.type, version=row.version, sender=row.sender, status=row.status,
        content_hash=row.content_hash, current=row.current,
        received_at=from_db_time(row.received_at), last_updated=from_db_time(row.last_updated),
    )
