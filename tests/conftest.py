"""Shared fixtures: a fresh database on SQLite and on PostgreSQL, the real data folder."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: the real data beside the repository (or beside the folder that holds a worktree of it)
SHARED_DATA = next((p / "shared" / "data" for p in REPO.parents
                    if (p / "shared" / "data").is_dir()), REPO.parent / "shared" / "data")
POSTGRES_URL = os.environ.get(
    "FHIR_ADAPTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("FHIR_ADAPTER_REQUIRE_POSTGRES") == "1"


def shared_data(name: str) -> Path:
    """A folder of the real data beside the repository, or a skip saying why it is missing."""
    folder = SHARED_DATA / name
    if not folder.is_dir():
        pytest.skip(f"real data folder {folder} is absent (it lives beside the repository)")
    return folder


def _postgres_admin():  # type: ignore[no-untyped-def]
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL)
    try:
        return psycopg.connect(
            host=url.host, port=url.port or 5432, user=url.username, password=url.password,
            dbname=url.database, autocommit=True, connect_timeout=3,
        ), url
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL at {url.host}:{url.port} is not reachable ({exc})"
        if REQUIRE_POSTGRES:
            pytest.fail(f"{reason}, and FHIR_ADAPTER_REQUIRE_POSTGRES=1")
        pytest.skip(reason)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    admin, url = _postgres_admin()
    name = f"fa_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh empty database URL: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))
