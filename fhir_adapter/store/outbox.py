"""The delivery outbox, its one API: a row per result version to send, claimed and settled.

A result change queues its row in the transaction that made it (``pending_row``); the sender
uses ``OutboxStore``, every method of which is one database transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update

from fhir_adapter.store.base import Units
from fhir_adapter.store.keys import from_db_time, to_utc
from fhir_adapter.store.owners import dead_here, owner_name
from fhir_adapter.store.rows import OutboxRow
from fhir_adapter.store.schema import endpoint_result, outbox

__all__ = ["OutboxStore", "pending_row"]


def pending_row(result_key: str, version: int, now: datetime) -> dict[str, Any]:
    """The values of a new ``pending`` row: deliver this version of the result (from now)."""
    return {"result_key": result_key, "version": version, "state": "pending", "attempts": 0,
            "next_attempt_at": now, "created_at": now}


class OutboxStore:
    """Claims, delivery outcomes and listings of the ``outbox`` table.

    A claim leases its rows (``lease_until``, the state stays ``pending``): no other sender
    takes them before the lease ends, not even a ``push`` that does not wait for their next
    try, and a sender killed mid-delivery leaves them to be claimed again when it ends. Claims
    are made one at a time: PostgreSQL skips the rows another claim holds locked (``SKIP
    LOCKED``), SQLite has one writer at a time. Outcomes change only rows still ``pending``, so
    a second sender that got there first is never undone."""

    def __init__(self, store: Units) -> None:
        self.store = store

    def claim_outbox(
        self, *, now: datetime, lease_until: datetime, limit: int, due_only: bool = True,
        holder: str | None = None,
    ) -> list[OutboxRow]:
        """Lease the oldest pending rows to ``holder`` (``host:pid/name``, default this
        process): rows another live holder leases are left, even when ``due_only`` is False."""
        holder = holder or owner_name()
        moment = to_utc(now)
        with self.store.transaction() as unit:
            held = set(unit.conn.execute(select(outbox.c.lease_holder).distinct().where(
                outbox.c.state == "pending", outbox.c.lease_until > moment)).scalars())
            gone = sorted(dead_here({h for h in held if h}))
            query = select(outbox.c.id).where(outbox.c.state == "pending", or_(
                outbox.c.lease_until.is_(None), outbox.c.lease_until <= moment,
                outbox.c.lease_holder == holder, outbox.c.lease_holder.in_(gone)))
            if due_only:
                query = query.where(outbox.c.next_attempt_at <= moment)
            query = query.order_by(outbox.c.id).limit(limit)
            if unit.conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = list(unit.conn.execute(query).scalars())
            if not ids:
                return []
            unit.conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(
                next_attempt_at=to_utc(lease_until), lease_until=to_utc(lease_until),
                lease_holder=holder))
            rows = unit.conn.execute(select(outbox).where(outbox.c.id.in_(ids))
                                     .order_by(outbox.c.id))
            return [_row(r) for r in rows]

    def outbox_delivered(self, ids: Sequence[int], *, at: datetime) -> None:
        self._pending(ids, state="delivered", delivered_at=to_utc(at),
                      attempts=outbox.c.attempts + 1, last_error=None)

    def outbox_retry(self, ids: Sequence[int], *, error: str, next_attempt_at: datetime) -> None:
        self._pending(ids, attempts=outbox.c.attempts + 1, last_error=error,
                      next_attempt_at=to_utc(next_attempt_at))

    def outbox_failed(self, ids: Sequence[int], *, error: str) -> None:
        self._pending(ids, state="failed", attempts=outbox.c.attempts + 1, last_error=error)

    def enqueue_all_results(self, *, at: datetime) -> int:
        """One new pending row per current endpoint result (its key and version)."""
        moment = to_utc(at)
        with self.store.transaction() as unit:
            rows = unit.conn.execute(
                select(endpoint_result.c.key, endpoint_result.c.version)
                .order_by(endpoint_result.c.key)
            ).all()
            if not rows:
                return 0
            unit.conn.execute(insert(outbox), [pending_row(r.key, r.version, moment) for r in rows])
            return len(rows)

    def outbox_rows(
        self, *, states: Sequence[str] = ("pending", "failed"), limit: int | None = None
    ) -> list[OutboxRow]:
        with self.store.read() as unit:
            query = select(outbox).where(outbox.c.state.in_(list(states))).order_by(outbox.c.id)
            if limit is not None:
                query = query.limit(limit)
            return [_row(r) for r in unit.conn.execute(query)]

    def counts(self) -> dict[str, int]:
        """Rows per state (for reports and tests)."""
        with self.store.read() as unit:
            rows = unit.conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state))
            return {str(state): int(n) for state, n in rows}

    def _pending(self, ids: Sequence[int], **values: Any) -> None:
        if not ids:
            return
        with self.store.transaction() as unit:
            unit.conn.execute(update(outbox).where(
                outbox.c.id.in_(list(ids)), outbox.c.state == "pending").values(
                    lease_until=None, lease_holder=None, **values))


def _row(row: Any) -> OutboxRow:
    return OutboxRow(
        row.id, row.result_key, row.version, row.state, row.attempts,
        from_db_time(row.next_attempt_at), row.last_error, from_db_time(row.created_at),
        None if row.delivered_at is None else from_db_time(row.delivered_at),
        None if row.lease_until is None else from_db_time(row.lease_until),
    )
