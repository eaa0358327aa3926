"""Repository of published endpoint results (each change queued in the outbox) and the audit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from fhir_adapter.store.base import UnitBase, in_batches
from fhir_adapter.store.keys import from_db_time, to_utc
from fhir_adapter.store.outbox import pending_row
from fhir_adapter.store.rows import AuditRow, ResultRow
from fhir_adapter.store.schema import audit, endpoint_result, outbox, recompute_pending

__all__ = ["ResultRepository"]

# Statements built once, with bound parameters (compiled once per engine).
_RESULT_STATE = select(
    endpoint_result.c.version, endpoint_result.c.content_hash, endpoint_result.c.status,
).where(endpoint_result.c.key == bindparam("b_key"))
_INSERT_RESULT = insert(endpoint_result)
_UPDATE_RESULT = update(endpoint_result).where(endpoint_result.c.key == bindparam("b_key"))
_ENQUEUE = insert(outbox)


class ResultRepository(UnitBase):
    """Endpoint results keyed by identifier value; a changed result gets a new version."""

    def result(self, key: str) -> ResultRow | None:
        row = self.conn.execute(select(endpoint_result).where(endpoint_result.c.key == key)).first()
        return _result(row) if row else None

    def put_result(
        self, key: str, *, kind: str, subject: str, status: str, resource: dict[str, Any],
        content_hash: str, enqueue: bool = False,
    ) -> ResultRow | None:
        """Store a result; returns the new row, or None when it is unchanged.
        With ``enqueue`` a changed result is queued for delivery in the same transaction."""
        now = to_utc(self.now())
        old = self.conn.execute(_RESULT_STATE, {"b_key": key}).first()
        if old is not None and old.content_hash == content_hash and old.status == status:
            return None
        version = 1 if old is None else old.version + 1
        values = {"kind": kind, "subject": subject, "status": status, "resource": resource,
                  "content_hash": content_hash, "last_updated": now, "version": version}
        if old is None:
            self.conn.execute(_INSERT_RESULT, {"key": key, **values})
        else:
            self.conn.execute(_UPDATE_RESULT, {"b_key": key, **values})
        if enqueue:
            self.conn.execute(_ENQUEUE, [pending_row(key, version, now)])
        return ResultRow(key, kind, subject, status, content_hash, resource, version, now)

    def put_results(self, rows: Sequence[ResultRow], *, enqueue: bool = False) -> None:
        """Store results whose previous state the caller read in this unit of work: each row
        with ``version`` 1 is new, any other replaces version - 1. One statement per kind of
        write, whatever the number of rows (``last_updated`` is set here)."""
        now = to_utc(self.now())
        values = [{"key": r.key, "b_key": r.key, "kind": r.kind, "subject": r.subject,
                   "status": r.status, "resource": r.resource, "content_hash": r.content_hash,
                   "version": r.version, "last_updated": now} for r in rows]
        created = [{k: v for k, v in row.items() if k != "b_key"}
                   for row in values if row["version"] == 1]
        updated = [{k: v for k, v in row.items() if k != "key"}
                   for row in values if row["version"] != 1]
        if created:
            self.conn.execute(_INSERT_RESULT, created)
        if updated:
            self.conn.execute(_UPDATE_RESULT, updated)
        if enqueue and rows:
            self.conn.execute(_ENQUEUE, [pending_row(r.key, r.version, now) for r in rows])

    def results(
        self, *, since: datetime | None = None, subject: str | None = None,
        kind: str | None = None, subjects: Sequence[str] | None = None,
    ) -> list[ResultRow]:
        """Stored results in key order: written after ``since``, of ``subject`` or of any of
        ``subjects``, of ``kind`` (each filter optional)."""
        query = select(endpoint_result).order_by(endpoint_result.c.key)
        if since is not None:
            query = query.where(endpoint_result.c.last_updated > to_utc(since))
        if subject is not None:
            query = query.where(endpoint_result.c.subject == subject)
        if kind is not None:
            query = query.where(endpoint_result.c.kind == kind)
        if subjects is None:
            return [_result(r) for r in self.conn.execute(query)]
        found: list[ResultRow] = []
        for part in in_batches(sorted(set(subjects))):
            found += [_result(r) for r in self.conn.execute(
                query.where(endpoint_result.c.subject.in_(part)))]
        return sorted(found, key=lambda r: r.key)

    def result_owners(self) -> list[tuple[str, str, str]]:
        """(key, kind, subject) of every stored result, without reading the resources."""
        rows = self.conn.execute(select(
            endpoint_result.c.key, endpoint_result.c.kind, endpoint_result.c.subject))
        return [(str(r.key), str(r.kind), str(r.subject)) for r in rows]

    def result_stamps(self) -> dict[str, tuple[int, int]]:
        """Per participant with results: (count, sum of versions) of them (any write of one
        of its results changes it)."""
        rows = self.conn.execute(
            select(endpoint_result.c.subject, func.count(), func.sum(endpoint_result.c.version))
            .group_by(endpoint_result.c.subject))
        return {str(r[0]): (int(r[1]), int(r[2])) for r in rows}

    def results_stamp(self) -> tuple[int, int]:
        """What changes whenever any result is written (a new row, or a new version of one):
        (rows, sum of versions). A cache of what is derived from every result is keyed by it."""
        row = self.conn.execute(select(
            func.count(), func.coalesce(func.sum(endpoint_result.c.version), 0))).one()
        return int(row[0]), int(row[1])

    # -- participants whose results wait for a recomputation ------------------------------
    def mark_stale(self, subjects: Sequence[str]) -> None:
        """Queue these participants for a recomputation (once each, however often queued);
        a fault recorded for one of them is forgotten: its data changed, it is tried again."""
        if not subjects:
            return
        dialect = postgresql if self.conn.dialect.name == "postgresql" else sqlite
        now = to_utc(self.now())
        statement = dialect.insert(recompute_pending)
        self.conn.execute(
            statement.on_conflict_do_update(index_elements=[recompute_pending.c.subject],
                                            set_={"fault": None, "failed_at": None}),
            [{"subject": s, "queued_at": now} for s in sorted(set(subjects))],
        )

    def stale_subjects(self, *, limit: int | None = None, claim: bool = False) -> list[str]:
        """Queued participants, in subject order (``limit`` of them), those whose
        recomputation failed left out. With ``claim`` (in a writing unit) they are locked until
        it ends, and those another unit holds are skipped: processes recomputing the queue at
        once on PostgreSQL take different participants (SQLite has one writer at a time)."""
        query = (select(recompute_pending.c.subject).where(recompute_pending.c.fault.is_(None))
                 .order_by(recompute_pending.c.subject))
        if limit is not None:
            query = query.limit(limit)
        if claim:
            query = query.with_for_update(skip_locked=True)
        return [str(s) for s in self.conn.execute(query).scalars()]

    def clear_stale(self, subjects: Sequence[str]) -> None:
        """These participants' results are current: off the queue (and their faults gone)."""
        for part in in_batches(subjects):
            self.conn.execute(delete(recompute_pending).where(
                recompute_pending.c.subject.in_(part)))

    def mark_fault(self, subject: str, fault: str) -> None:
        """The recomputation of ``subject`` failed for this reason: kept, apart from the queue."""
        dialect = postgresql if self.conn.dialect.name == "postgresql" else sqlite
        now = to_utc(self.now())
        statement = dialect.insert(recompute_pending).values(
            subject=subject, queued_at=now, fault=fault, failed_at=now)
        self.conn.execute(statement.on_conflict_do_update(
            index_elements=[recompute_pending.c.subject],
            set_={"fault": fault, "failed_at": now}))

    def recompute_faults(self) -> dict[str, str]:
        """Subject -> why its results could not be recomputed (they stay as they were)."""
        rows = self.conn.execute(
            select(recompute_pending.c.subject, recompute_pending.c.fault)
            .where(recompute_pending.c.fault.is_not(None)).order_by(recompute_pending.c.subject))
        return {str(r.subject): str(r.fault) for r in rows}

    def record_audit(self, who: str, action: str, resources: Sequence[str | dict[str, Any]],
                     outcome: str) -> None:
        """``resources``: ``Type/id`` keys, and a description of each refused entry."""
        self.conn.execute(insert(audit).values(
            at=to_utc(self.now()), who=who, action=action, resources=list(resources),
            outcome=outcome,
        ))

    def audit_rows(self, *, limit: int = 1000) -> list[AuditRow]:
        """The newest audit rows, newest first."""
        rows = self.conn.execute(select(audit).order_by(audit.c.id.desc()).limit(limit))
        return [_audit_row(r) for r in rows]

    def audit_row_ids(self, *, limit: int = 1000) -> list[int]:
        """The ids of the newest audit rows, newest first. Rows never change once written, so
        a reader may keep those it has read and ask ``audit_rows_by_id`` for the others (ids
        are not given in commit order on PostgreSQL: a row with a lower id may come later)."""
        return [int(i) for i in self.conn.execute(
            select(audit.c.id).order_by(audit.c.id.desc()).limit(limit)).scalars()]

    def audit_rows_by_id(self, ids: Sequence[int]) -> list[AuditRow]:
        found: list[AuditRow] = []
        for part in in_batches(ids):
            found += [_audit_row(r) for r in self.conn.execute(
                select(audit).where(audit.c.id.in_(part)))]
        return sorted(found, key=lambda r: r.id, reverse=True)


def _audit_row(r: Any) -> AuditRow:
    return AuditRow(r.id, from_db_time(r.at), r.who, r.action, list(r.resources), r.outcome)


def _result(row: Any) -> ResultRow:
    return ResultRow(row.key, row.kind, row.subject, row.status, row.content_hash, row.resource,
                     row.version, from_db_time(row.last_updated))
