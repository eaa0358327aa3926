"""The unit of work every repository method runs in: one connection, one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy import Connection

from fhir_adapter.store.fast import driver_connection
from fhir_adapter.store.rows import ParticipantRow, StoredResource

__all__ = ["IN_BATCH", "Clock", "UnitBase", "Units", "in_batches"]

#: Most values bound in one ``IN (...)`` (SQLite's limit is far above; PostgreSQL has none).
IN_BATCH = 500


T = TypeVar("T")


def in_batches(values: Sequence[T]) -> Iterator[list[T]]:
    """``values`` in consecutive parts of at most ``IN_BATCH``, one ``IN (...)`` each."""
    for start in range(0, len(values), IN_BATCH):
        yield list(values[start:start + IN_BATCH])

Clock = Callable[[], datetime]


class Units(Protocol):
    """What hands out units of work (the Store), as the modules below it see it."""

    def transaction(self) -> AbstractContextManager[UnitBase]: ...

    def read(self) -> AbstractContextManager[UnitBase]: ...


class UnitBase:
    """State shared by the repository mixins: the open connection, the clock, and what this
    unit of work already read or wrote (identity keys, resources, participants), so that a
    Bundle or a chunk of lines asks the database once per fact. The caches live as long as the
    unit; a rolled-back savepoint clears them (``forget``)."""

    def __init__(self, connection: Connection, clock: Clock) -> None:
        self.conn = connection
        self._clock = clock
        self._owners: dict[str, str | None] = {}  # identity key -> resource id (None: unknown)
        self._stored: dict[str, StoredResource] = {}  # resource id -> current version
        self._by_patient: dict[str, ParticipantRow | None] = {}
        self._by_subject: dict[str, ParticipantRow | None] = {}
        self._sqlite = connection.dialect.name == "sqlite"
        self._savepoints = 0

    def now(self) -> datetime:
        return self._clock()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A SAVEPOINT: what the block wrote is undone when it raises (the rest stays).
        On SQLite it is sent to the driver directly (a statement, not a dispatch)."""
        if not self._sqlite:
            try:
                with self.conn.begin_nested():
                    yield
            except BaseException:
                self.forget()
                raise
            return
        raw = driver_connection(self.conn)
        self._savepoints += 1
        name = f"fa_unit_{self._savepoints}"
        raw.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            raw.execute(f"ROLLBACK TO SAVEPOINT {name}")
            raw.execute(f"RELEASE SAVEPOINT {name}")
            self.forget()
            raise
        raw.execute(f"RELEASE SAVEPOINT {name}")

    def forget(self) -> None:
        """Drop everything cached (after a rollback to a savepoint, or a lost race)."""
        self._owners.clear()
        self._stored.clear()
        self._by_patient.clear()
        self._by_subject.clear()
