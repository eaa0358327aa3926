"""A stand-in for the adapter's store in the sender's own tests: endpoint results and their
outbox in one SQLite file (standard library), a change queued in the same transaction as it is
made, and a builder of the transaction Bundle of conditional PUTs (RESULTS.md)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

__all__ = ["BASE", "StandinStore", "result_identifier"]

BASE = "https://fhir-adapter.org/fhir"
STUDY = ("https://clinicaltrials.gov", "NCT02382874")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS result (key TEXT PRIMARY KEY, subject TEXT NOT NULL,
    value TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, result_key TEXT NOT NULL,
    version INTEGER NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL, last_error TEXT, created_at TEXT NOT NULL, delivered_at TEXT);
"""


def result_identifier(key: str) -> str:
    return f"{BASE}/endpoint-result|{key}"


def _t(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class _Row:
    id: int
    result_key: str
    version: int
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    def __init__(self, row: sqlite3.Row) -> None:
        for name in row.keys():  # noqa: SIM118 - sqlite3.Row is not a mapping
            value = row[name]
            if name.endswith("_at") and value is not None:
                value = datetime.fromisoformat(value)
            setattr(self, name, value)


class StandinStore:
    def __init__(self, path: str) -> None:
        self.path = path
        with closing(sqlite3.connect(path)) as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as db:
            db.row_factory = sqlite3.Row
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- what ingest would do -----------------------------------------------------------------

    def put_result(self, key: str, subject: str, value: Decimal | str) -> None:
        """A new or changed result, and its outbox row, in one transaction."""
        now = _t(datetime.now(UTC))
        with self._tx() as db:
            old = db.execute("SELECT value, version FROM result WHERE key=?", (key,)).fetchone()
            if old is not None and old["value"] == str(value):
                return
            version = 1 if old is None else old["version"] + 1
            db.execute("INSERT OR REPLACE INTO result VALUES (?,?,?,?)",
                       (key, subject, str(value), version))
            db.execute("INSERT INTO outbox (result_key, version, state, attempts, "
                       "next_attempt_at, created_at) VALUES (?,?,'pending',0,?,?)",
                       (key, version, now, now))

    def states(self) -> dict[str, int]:
        with self._tx() as db:
            rows = db.execute("SELECT state, COUNT(*) n FROM outbox GROUP BY state").fetchall()
        return {r["state"]: r["n"] for r in rows}

    # -- the OutboxRepository protocol ----------------------------------------------------------

    def claim_outbox(self, *, now: datetime, lease_until: datetime, limit: int,
                     due_only: bool = True) -> list[_Row]:
        where = "state='pending'" + (" AND next_attempt_at <= ?" if due_only else "")
        args: tuple[Any, ...] = (_t(now), limit) if due_only else (limit,)
        with self._tx() as db:
            rows = db.execute(f"SELECT * FROM outbox WHERE {where} ORDER BY id LIMIT ?",
                              args).fetchall()
            db.executemany("UPDATE outbox SET next_attempt_at=? WHERE id=?",
                           [(_t(lease_until), r["id"]) for r in rows])
        return [_Row(r) for r in rows]

    def _update(self, ids: Sequence[int], assignments: str, args: tuple[Any, ...]) -> None:
        with self._tx() as db:
            db.executemany(
                f"UPDATE outbox SET attempts=attempts+1, {assignments} "
                "WHERE id=? AND state='pending'",
                [(*args, i) for i in ids],
            )

    def outbox_delivered(self, ids: Sequence[int], *, at: datetime) -> None:
        self._update(ids, "state='delivered', delivered_at=?, last_error=NULL", (_t(at),))

    def outbox_retry(self, ids: Sequence[int], *, error: str, next_attempt_at: datetime) -> None:
        self._update(ids, "last_error=?, next_attempt_at=?", (error, _t(next_attempt_at)))

    def outbox_failed(self, ids: Sequence[int], *, error: str) -> None:
        self._update(ids, "state='failed', last_error=?", (error,))

    def enqueue_all_results(self, *, at: datetime) -> int:
        with self._tx() as db:
            rows = db.execute("SELECT key, version FROM result ORDER BY key").fetchall()
            db.executemany("INSERT INTO outbox (result_key, version, state, attempts, "
                           "next_attempt_at, created_at) VALUES (?,?,'pending',0,?,?)",
                           [(r["key"], r["version"], _t(at), _t(at)) for r in rows])
        return len(rows)

    def outbox_rows(self, *, states: Sequence[str] = ("pending", "failed"),
                    limit: int | None = None) -> list[_Row]:
        marks = ",".join("?" for _ in states)
        with self._tx() as db:
            rows = db.execute(f"SELECT * FROM outbox WHERE state IN ({marks}) ORDER BY id "
                              "LIMIT ?", (*states, -1 if limit is None else limit)).fetchall()
        return [_Row(r) for r in rows]

    # -- the BundleBuilder ----------------------------------------------------------------------

    def build(self, keys: Sequence[str] | None) -> dict[str, Any]:
        with self._tx() as db:
            rows = db.execute("SELECT * FROM result ORDER BY key").fetchall()
        chosen = [r for r in rows if keys is None or r["key"] in set(keys)]
        entries = [_put({"resourceType": "ResearchStudy", "status": "active",
                         "identifier": [{"system": STUDY[0], "value": STUDY[1]}]}, "urn:uuid:s")]
        for subject in sorted({r["subject"] for r in chosen}):
            entries.append(_put({"resourceType": "Patient", "identifier": [
                {"system": f"{BASE}/subject", "value": subject}]}, f"urn:uuid:p-{subject}"))
        for r in chosen:
            entries.append(_put({
                "resourceType": "Observation", "status": "final",
                "identifier": [{"system": f"{BASE}/endpoint-result", "value": r["key"]}],
                "code": {"coding": [{"system": f"{BASE}/CodeSystem/trial-endpoint",
                                     "code": r["key"].split(".")[1]}]},
                "subject": {"reference": f"urn:uuid:p-{r['subject']}"},
                "valueQuantity": {"value": float(r["value"]), "unit": "U/L",
                                  "system": "http://unitsofmeasure.org", "code": "U/L"},
            }, f"urn:uuid:o-{r['key']}"))
        return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _put(resource: dict[str, Any], full_url: str) -> dict[str, Any]:
    first = resource["identifier"][0]
    query = quote(f"{first['system']}|{first['value']}", safe=":/|")
    return {"fullUrl": full_url, "resource": resource,
            "request": {"method": "PUT", "url": f"{resource['resourceType']}?identifier={query}"}}
