"""Repository of FHIR resources as received: current version, history and identity keys."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from fhir_adapter.errors import ConflictError
from fhir_adapter.store.base import UnitBase, in_batches
from fhir_adapter.store.fast import FastInsert, integrity_errors
from fhir_adapter.store.keys import (
    from_db_time,
    identifier_key,
    identifier_prefix,
    is_identifier_key,
    to_utc,
)
from fhir_adapter.store.rows import SaveOutcome, StoredResource
from fhir_adapter.store.schema import resource, resource_key, resource_version

__all__ = ["ResourceRepository"]

_MAX_RETRIES = 5

# Statements built once, with bound parameters: SQLAlchemy compiles each once per engine.
_KEYS_IN = select(resource_key.c.key, resource_key.c.resource_id).where(
    resource_key.c.key.in_(bindparam("keys", expanding=True)))
_BY_ID = select(resource).where(resource.c.id == bindparam("rid"))
_BY_IDS = select(resource).where(resource.c.id.in_(bindparam("ids", expanding=True)))
_INSERT_RESOURCE = FastInsert(resource)
_INSERT_VERSION = FastInsert(resource_version)
_INSERT_KEY = insert(resource_key)
_INSERT_KEYS = FastInsert(resource_key)
_NEW_VERSION = (
    update(resource)
    .where(resource.c.id == bindparam("b_id"), resource.c.version == bindparam("b_version"))
    .values(version=bindparam("version"), sender=bindparam("sender"),
            status=bindparam("status"), content_hash=bindparam("content_hash"),
            current=bindparam("current"), received_at=bindparam("received_at"),
            last_updated=bindparam("last_updated"))
)


class ResourceRepository(UnitBase):
    """Resources by identity key; the UNIQUE key constraint settles concurrent creates."""

    def find(self, keys: Sequence[str]) -> StoredResource | None:
        """The stored resource named by the strongest of ``keys`` that is known."""
        if not keys:
            return None
        self._look_up(keys)
        for key in keys:
            owner = self._owners.get(key)
            if owner is not None:
                return self.get_by_id(owner)
        return None

    def prefetch(self, keys: Iterable[str]) -> None:
        """Look up many identity keys (a whole Bundle's, a chunk of lines') at once, and the
        resources they name: the ``find`` calls that follow are answered from memory."""
        asked = list(dict.fromkeys(keys))
        self._look_up(asked)
        owners = (self._owners.get(k) for k in asked)
        wanted = list({rid for rid in owners if rid is not None and rid not in self._stored})
        for part in in_batches(wanted):
            for row in self.conn.execute(_BY_IDS, {"ids": part}):
                self._stored[row.id] = _stored(row)

    def owners(self, keys: Sequence[str]) -> dict[str, str]:
        """The adapter id each of ``keys`` already names (keys naming nothing are left out)."""
        self._look_up(keys)
        return {k: rid for k in keys if (rid := self._owners.get(k)) is not None}

    def _look_up(self, keys: Sequence[str]) -> None:
        missing = [k for k in keys if k not in self._owners]
        for part in in_batches(missing):
            found = {key: rid for key, rid in self.conn.execute(_KEYS_IN, {"keys": part})}
            for key in part:
                self._owners[key] = found.get(key)

    def get_by_id(self, resource_id: str) -> StoredResource | None:
        cached = self._stored.get(resource_id)
        if cached is not None:
            return cached
        row = self.conn.execute(_BY_ID, {"rid": resource_id}).first()
        if row is None:
            return None
        found = self._stored[resource_id] = _stored(row)
        return found

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
            cond = resource_key.c.key == identifier_key(resource_type, system, value)
        else:
            prefix = identifier_prefix(resource_type).replace("%", r"\%").replace("_", r"\_")
            cond = resource_key.c.key.like(prefix + "%", escape="\\")
        rows = self.conn.execute(select(resource_key.c.key, resource_key.c.resource_id).where(cond))
        return sorted({r.resource_id for r in rows
                       if is_identifier_key(r.key, resource_type, system, value)})

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
        at_id: bool = False,
    ) -> SaveOutcome:
        """Create the resource, or add a version when its content changed, else do nothing.

        ``at_id``: the resource is the one stored under ``new_id`` (a PUT by id), whatever its
        keys name; otherwise it is the one its strongest known key names."""
        at = to_utc(received_at or self.now())
        keys = list(dict.fromkeys(keys))  # a key given twice would clash with itself
        for _ in range(_MAX_RETRIES):
            existing = self.get_by_id(new_id) if at_id else self.find(keys)
            if existing is None:
                if self._try_create(resource_type, keys, content, sender, content_hash,
                                    new_id, status, at):
                    return SaveOutcome(new_id, resource_type, 1, created=True, changed=True,
                                       last_updated=at)
                self.forget()
                continue  # another writer created it meanwhile: now it is an update
            if existing.type != resource_type:
                raise ConflictError(
                    f"identity of this {resource_type} already names a {existing.type}"
                )
            outcome = self._try_update(existing, keys, content, sender, content_hash, status, at)
            if outcome is not None:
                return outcome
            self.forget()
        raise ConflictError(f"{resource_type} changed concurrently too often; try again")

    def _try_create(
        self, rtype: str, keys: Sequence[str], content: dict[str, Any], sender: str,
        digest: str, new_id: str, status: str | None, at: datetime,
    ) -> bool:
        row = {"id": new_id, "type": rtype, "version": 1, "sender": sender, "status": status,
               "content_hash": digest, "current": content, "received_at": at,
               "last_updated": at}
        try:
            if self._sqlite:
                # SQLite has one writer at a time (BEGIN IMMEDIATE) and ``find`` just saw none
                # of the keys: a clash is not expected, and is undone by hand (no savepoint).
                self._insert_new(row, keys)
            else:
                with self.conn.begin_nested():
                    self._insert_new(row, keys)
        except integrity_errors(self.conn):
            if self._sqlite:
                self._undo_create(new_id)
            return False
        for key in keys:
            self._owners[key] = new_id
        self._stored[new_id] = _stored_from(row)
        return True

    def _insert_new(self, row: dict[str, Any], keys: Sequence[str]) -> None:
        _INSERT_RESOURCE(self.conn, [row])
        self._insert_version(row["id"], 1, row["sender"], row["received_at"], row["current"])
        _INSERT_KEYS(self.conn, [{"key": k, "resource_id": row["id"]} for k in keys])

    def _undo_create(self, resource_id: str) -> None:
        for table, column in ((resource_key, resource_key.c.resource_id),
                              (resource_version, resource_version.c.resource_id),
                              (resource, resource.c.id)):
            self.conn.execute(delete(table).where(column == resource_id))

    def _try_update(
        self, existing: StoredResource, keys: Sequence[str], content: dict[str, Any],
        sender: str, digest: str, status: str | None, at: datetime,
    ) -> SaveOutcome | None:
        self._add_keys(existing.id, keys)
        if existing.content_hash == digest:
            return SaveOutcome(existing.id, existing.type, existing.version, False, False,
                               last_updated=existing.last_updated)
        version = existing.version + 1
        result = self.conn.execute(_NEW_VERSION, {
            "b_id": existing.id, "b_version": existing.version, "version": version,
            "sender": sender, "status": status, "content_hash": digest, "current": content,
            "received_at": at, "last_updated": at})
        if result.rowcount != 1:
            return None  # someone else added a version first: read again
        self._insert_version(existing.id, version, sender, at, content)
        self._stored[existing.id] = StoredResource(
            existing.id, existing.type, version, sender, status, digest, content, at, at)
        return SaveOutcome(existing.id, existing.type, version, False, True, previous=existing,
                           last_updated=at)

    def _insert_version(
        self, resource_id: str, version: int, sender: str, at: datetime, content: dict[str, Any]
    ) -> None:
        _INSERT_VERSION(self.conn, [{
            "resource_id": resource_id, "version": version, "sender": sender,
            "received_at": at, "content": content}])

    def _add_keys(self, resource_id: str, keys: Sequence[str]) -> None:
        self._look_up(keys)
        for key in keys:
            if self._owners.get(key) is not None:
                continue  # a key already naming a resource keeps naming it
            try:
                with self.conn.begin_nested():
                    self.conn.execute(_INSERT_KEY, {"key": key, "resource_id": resource_id})
            except IntegrityError:
                self._owners.pop(key, None)
                continue
            self._owners[key] = resource_id

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


def _stored_from(row: dict[str, Any]) -> StoredResource:
    """The same as a row read back (``_stored``), from the values just inserted."""
    return _stored(SimpleNamespace(**row))


def _stored(row: Any) -> StoredResource:
    return StoredResource(
        id=row.id, type=row.type, version=row.version, sender=row.sender, status=row.status,
        content_hash=row.content_hash, current=row.current,
        received_at=from_db_time(row.received_at), last_updated=from_db_time(row.last_updated),
    )
