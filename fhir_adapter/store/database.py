"""The Store: opens (and migrates) a database and hands out units of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError

from fhir_adapter.errors import ConfigError
from fhir_adapter.store.base import Clock
from fhir_adapter.store.engine import make_engine, upgrade
from fhir_adapter.store.participants import ParticipantRepository
from fhir_adapter.store.pulls import PullRepository
from fhir_adapter.store.resources import ResourceRepository
from fhir_adapter.store.results import ResultRepository
from fhir_adapter.store.schema import metadata
from fhir_adapter.store.stamps import StampRepository
from fhir_adapter.store.subscriptions import SubscriptionRepository

__all__ = ["Store", "Unit"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Unit(ResourceRepository, ParticipantRepository, ResultRepository, StampRepository,
           PullRepository, SubscriptionRepository):
    """One unit of work: every repository method, on one connection, in one transaction."""


class Store:
    """A database holding resources, the trial model and results (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, *, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock: Clock = clock or _utc_now

    @classmethod
    def open(cls, url: str, *, clock: Clock | None = None) -> Store:
        """Connect to ``url`` and bring its schema to the newest migration."""
        engine = make_engine(url)
        upgrade(engine)
        return cls(engine, clock=clock)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Unit]:
        """A writing unit of work: committed when the block ends, rolled back on an error."""
        with self._begin(write=True) as unit:
            yield unit

    @contextmanager
    def read(self) -> Iterator[Unit]:
        """A reading unit of work (takes no write lock on SQLite)."""
        with self._begin(write=False) as unit:
            yield unit

    @contextmanager
    def _begin(self, *, write: bool) -> Iterator[Unit]:
        try:
            connection = self.engine.connect().execution_options(write=write)
        except OperationalError as exc:
            raise ConfigError(f"cannot connect to the database: {exc.orig}") from exc
        with connection, connection.begin():
            yield Unit(connection, self.clock)

    def row_counts(self) -> dict[str, int]:
        """Rows per table (for reports and tests)."""
        with self.read() as unit:
            return {
                name: int(unit.conn.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in metadata.tables.items()
            }

    def close(self) -> None:
        self.engine.dispose()
