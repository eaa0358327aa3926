"""Bulk Data export jobs kept in the database, so that every server process sees them and a
restart neither loses one nor serves half of it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, update

from fhir_adapter.store.database import Store, Unit
from fhir_adapter.store.keys import from_db_time, to_utc
from fhir_adapter.store.schema import bulk_export, endpoint_result

__all__ = ["ACTIVE", "ExportJob", "ExportJobs", "result_subjects"]

QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED = (
    "queued", "running", "completed", "failed", "cancelled")
ACTIVE = frozenset({QUEUED, RUNNING})




@dataclass(frozen=True, slots=True)
class ExportJob:
    id: str
    status: str
    request: str
    parameters: dict[str, Any]
    client: str
    created_at: datetime
    owner: str | None = None
    heartbeat_at: datetime | None = None
    transaction_time: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = None
    polled_at: datetime | None = None
    done: int = 0
    total: int = 0
    output: dict[str, Any] | None = field(default=None)
    error: str | None = None


def _time(value: Any) -> datetime | None:
    return from_db_time(value) if value is not None else None


def _job(r: Any) -> ExportJob:
    return ExportJob(
        r.id, r.status, r.request, dict(r.parameters), r.client, from_db_time(r.created_at),
        r.owner, _time(r.heartbeat_at), _time(r.transaction_time), _time(r.finished_at),
        _time(r.expires_at), _time(r.polled_at), r.done, r.total,
        dict(r.output) if r.output is not None else None, r.error)


def result_subjects(unit: Unit, *, since: datetime | None = None) -> list[str]:
    """Every participant with a stored result (written after ``since``), without reading
    the results."""
    query = select(endpoint_result.c.subject).distinct().order_by(endpoint_result.c.subject)
    if since is not None:
        query = query.where(endpoint_result.c.last_updated > to_utc(since))
    rows = unit.conn.execute(query)
    return [str(s) for s in rows.scalars()]


class ExportJobs:
    """The ``bulk_export`` table of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, *, request: str, parameters: dict[str, Any], client: str) -> ExportJob:
        job_id = uuid.uuid4().hex
        with self.store.transaction() as unit:
            unit.conn.execute(insert(bulk_export).values(
                id=job_id, status=QUEUED, request=request, parameters=parameters,
                client=client, created_at=to_utc(unit.now()), done=0, total=0))
        found = self.get(job_id)
        assert found is not None
        return found

    def get(self, job_id: str) -> ExportJob | None:
        with self.store.read() as unit:
            found = unit.conn.execute(select(bulk_export).where(bulk_export.c.id == job_id)).first()
        return _job(found) if found is not None else None

    def claim(self, *, owner: str, stale: timedelta, dead: set[str]) -> ExportJob | None:
        """Take the oldest queued job, or a running one whose owner is dead or silent for
        longer than ``stale``; None when there is none."""
        with self.store.transaction() as unit:
            now = to_utc(unit.now())
            conditions = [bulk_export.c.status == QUEUED,
                          (bulk_export.c.status == RUNNING)
                          & (bulk_export.c.heartbeat_at < now - stale)]
            if dead:
                conditions.append((bulk_export.c.status == RUNNING)
                                  & bulk_export.c.owner.in_(sorted(dead)))
            found = unit.conn.execute(
                select(bulk_export.c.id).where(or_(*conditions))
                .order_by(bulk_export.c.created_at).limit(1)).scalar()
            if found is None:
                return None
            taken = unit.conn.execute(
                update(bulk_export).where(bulk_export.c.id == found, or_(*conditions))
                .values(status=RUNNING, owner=owner, heartbeat_at=now, done=0, total=0,
                        transaction_time=None, output=None, error=None))
            if taken.rowcount != 1:
                return None
        return self.get(str(found))

    def running_owners(self) -> set[str]:
        with self.store.read() as unit:
            rows = unit.conn.execute(select(bulk_export.c.owner).distinct()
                                     .where(bulk_export.c.status == RUNNING))
            return {str(o) for o in rows.scalars() if o}

    def progress(self, job_id: str, owner: str, *, done: int, total: int,
                 transaction_time: datetime | None = None) -> str:
        """Record how far the job is (its heartbeat); returns its status now (``cancelled``
        when a client deleted it meanwhile, or another owner when it was taken over)."""
        values: dict[str, Any] = {"done": done, "total": total}
        if transaction_time is not None:
            values["transaction_time"] = to_utc(transaction_time)
        with self.store.transaction() as unit:
            values["heartbeat_at"] = to_utc(unit.now())
            unit.conn.execute(update(bulk_export).where(
                bulk_export.c.id == job_id, bulk_export.c.owner == owner,
                bulk_export.c.status == RUNNING).values(**values))
            found = unit.conn.execute(select(bulk_export.c.status, bulk_export.c.owner)
                                      .where(bulk_export.c.id == job_id)).first()
        if found is None:
            return CANCELLED
        return str(found.status) if found.owner == owner else "taken"

    def finish(self, job_id: str, owner: str, *, output: dict[str, Any] | None,
               error: str | None, retention: timedelta) -> bool:
        """Mark the job completed (``output``: the files) or failed (``error``)."""
        with self.store.transaction() as unit:
            now = to_utc(unit.now())
            done = unit.conn.execute(update(bulk_export).where(
                bulk_export.c.id == job_id, bulk_export.c.owner == owner,
                bulk_export.c.status == RUNNING).values(
                status=FAILED if error else COMPLETED, output=output, error=error,
                finished_at=now, expires_at=now + retention, heartbeat_at=now))
            return done.rowcount == 1

    def polled(self, job_id: str, at: datetime) -> datetime | None:
        """Note a status request; the previous one's time (None: the first)."""
        with self.store.transaction() as unit:
            before = unit.conn.execute(select(bulk_export.c.polled_at)
                                       .where(bulk_export.c.id == job_id)).scalar()
            unit.conn.execute(update(bulk_export).where(bulk_export.c.id == job_id)
                              .values(polled_at=to_utc(at)))
        return _time(before)

    def cancel(self, job_id: str) -> bool:
        """Forget the job (a running one stops at its next step); False when unknown."""
        with self.store.transaction() as unit:
            gone = unit.conn.execute(delete(bulk_export).where(bulk_export.c.id == job_id))
            return gone.rowcount == 1

    def expired(self, now: datetime) -> list[str]:
        """Jobs whose files expired; they are forgotten as they are listed."""
        with self.store.transaction() as unit:
            ids = list(unit.conn.execute(select(bulk_export.c.id).where(
                bulk_export.c.expires_at < to_utc(now))).scalars())
            if ids:
                unit.conn.execute(delete(bulk_export).where(bulk_export.c.id.in_(ids)))
        return [str(i) for i in ids]

    def known(self) -> set[str]:
        with self.store.read() as unit:
            return {str(i) for i in unit.conn.execute(select(bulk_export.c.id)).scalars()}
