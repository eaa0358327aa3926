"""Hot-path inserts on SQLite through the driver, with SQLAlchemy's own type conversions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert

__all__ = ["FastInsert", "driver_connection", "integrity_errors"]

Processor = Callable[[Any], Any] | None


def driver_connection(conn: Connection) -> Any:
    """The sqlite3 connection under ``conn`` (same transaction, same savepoints)."""
    return conn.connection.dbapi_connection


class FastInsert:
    """``INSERT`` of rows (dicts with the same keys) into one table. On SQLite the statement
    goes straight to the driver: the columns' bind processors (JSON, DateTime, Boolean) are
    the ones SQLAlchemy would apply, so the stored values are the same, without the ~20 us of
    statement dispatch per row. Elsewhere it is an ordinary Core ``insert``.
    Raises the driver's IntegrityError on SQLite (see ``integrity_errors``)."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._statement = insert(table)
        self._prepared: dict[tuple[str, ...], tuple[str, list[Processor]]] = {}

    def __call__(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        if conn.dialect.name != "sqlite":
            conn.execute(self._statement, list(rows))
            return
        columns = tuple(rows[0])
        sql, processors = self._prepare(conn, columns)
        params = [tuple(p(row[c]) if p is not None else row[c]
                        for c, p in zip(columns, processors, strict=True)) for row in rows]
        raw = driver_connection(conn)
        if len(params) == 1:
            raw.execute(sql, params[0])
        else:
            raw.executemany(sql, params)

    def _prepare(self, conn: Connection, columns: tuple[str, ...]) -> tuple[str, list[Processor]]:
        found = self._prepared.get(columns)
        if found is None:
            names = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join("?" for _ in columns)
            sql = f'INSERT INTO "{self.table.name}" ({names}) VALUES ({marks})'
            processors: list[Processor] = [
                self.table.c[c].type._cached_bind_processor(conn.dialect) for c in columns]
            found = (sql, processors)
            self._prepared[columns] = found
        return found


def integrity_errors(conn: Connection) -> tuple[type[BaseException], ...]:
    """The IntegrityError classes a FastInsert may raise on ``conn``."""
    from sqlalchemy.exc import IntegrityError

    driver = getattr(conn.dialect.dbapi, "IntegrityError", None)
    return (IntegrityError, driver) if isinstance(driver, type) else (IntegrityError,)
