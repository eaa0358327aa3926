"""Database engines (SQLite tuned for concurrent use, PostgreSQL by URL) and migrations."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from fhir_adapter.errors import ConfigError

__all__ = ["BUSY_TIMEOUT_SECONDS", "MIGRATION_LOCK", "make_engine", "upgrade"]

BUSY_TIMEOUT_SECONDS = 30
_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL mode, a busy timeout and foreign keys."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"database URL {url!r} is not a database URL") from exc
    try:
        if parsed.get_backend_name() == "sqlite":
            _make_folder(parsed.database)
            return _sqlite_engine(url)
        return _postgres_engine(url)
    except (NoSuchModuleError, ArgumentError) as exc:
        raise ConfigError(f"database URL {url!r}: {exc}") from exc


#: The advisory lock every PostgreSQL writer holds shared for its transaction; an export takes
#: it exclusive for an instant to fix its transactionTime between writers (store/snapshots.py).
WRITERS_LOCK = 0x6661_6578  # "faex"


def _postgres_engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True, json_serializer=_dumps,
                           json_deserializer=_loads)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # As a SQLite writer takes the write lock at BEGIN IMMEDIATE: every row a writer stamps
        # is stamped after it holds this lock, so no write straddles an export's instant.
        if connection.get_execution_options().get("write", True):
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock_shared({WRITERS_LOCK})")

    return engine


def _make_folder(database: str | None) -> None:
    """A SQLite file may be named in a folder that does not exist yet: create the folder."""
    if database and database != ":memory:" and not database.startswith("file:"):
        try:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the folder of the database {database}: "
                              f"{exc.strerror or exc}") from exc


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url,
        connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        json_serializer=_dumps,
        json_deserializer=_loads,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, open transactions (needed for SAVEPOINT).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A writer takes the write lock at once, so two writers queue instead of deadlocking.
        write = connection.get_execution_options().get("write", True)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


#: The PostgreSQL advisory lock held while migrating (any fixed number; ours spells "fhirad").
MIGRATION_LOCK = 0x666869726164


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest migration (alembic ``upgrade head``).

    On PostgreSQL under a transaction-level advisory lock: processes that open an empty
    database at once (``serve --workers N``) migrate it one after the other, the later ones
    finding it current. SQLite's ``BEGIN IMMEDIATE`` serialises them already."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise ConfigError(f"cannot open the database: {exc.orig}") from exc


_ORJSON_OPTIONS = (orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
                   | orjson.OPT_PASSTHROUGH_DATACLASS)


def _dumps(value: Any) -> str:
    """JSON for the document columns; decimals become JSON numbers. orjson writes it (several
    times faster); what orjson cannot write (an integer beyond 64 bits) falls back to json."""
    try:
        return orjson.dumps(value, default=_number, option=_ORJSON_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, default=_number, separators=(",", ":"), ensure_ascii=False)


def _loads(text: str | bytes) -> Any:
    """The document columns read back: orjson (several times faster than json, the same
    values); what it refuses (an integer beyond 64 bits, written by the fallback above) json
    reads."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _number(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        text = str(obj)
        return int(text) if text.lstrip("-").isdigit() else float(text)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
