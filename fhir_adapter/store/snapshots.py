"""A read of the store at one exact instant, between writers: an export's transactionTime.

Bulk Data Access IG v2 (export.html, "Response - Complete Status", ``transactionTime``): the
server's time when the query is run; no resource modified after it, every matching resource
modified up to it. Writers stamp their rows while holding the writers' lock (BEGIN IMMEDIATE on
SQLite, ``WRITERS_LOCK`` shared on PostgreSQL). Taking that lock for an instant, reading the
clock, and opening one snapshot before letting go gives an instant that every row written so
far precedes and every later row follows: a result is in this export or in the next ``_since``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import select

from fhir_adapter.store.database import Store, Unit
from fhir_adapter.store.engine import WRITERS_LOCK
from fhir_adapter.store.schema import endpoint_result

__all__ = ["snapshot"]


@contextmanager
def snapshot(store: Store) -> Iterator[tuple[Unit, datetime]]:
    """A reading unit that sees the store as it was at the instant yielded with it."""
    sqlite = store.backend == "sqlite"
    reader = store.engine.connect().execution_options(
        write=False, **({} if sqlite else {"isolation_level": "REPEATABLE READ"}))
    try:
        with store.engine.connect().execution_options(write=sqlite) as lock:
            lock.begin()  # SQLite: BEGIN IMMEDIATE, once the writer before has committed
            if not sqlite:
                lock.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITERS_LOCK})")
            instant = store.clock()
            reader.begin()
            reader.execute(select(endpoint_result.c.key).limit(1)).all()  # the snapshot is taken
            lock.rollback()
        yield Unit(reader, store.clock), instant
    finally:
        reader.close()
