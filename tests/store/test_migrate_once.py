"""Several processes opening one empty PostgreSQL database at once migrate it once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fhir_adapter.store import Store

OPEN = "import sys; from fhir_adapter.store import Store; Store.open(sys.argv[1]).close()"


@pytest.mark.postgres
def test_concurrent_openings_of_an_empty_database_all_succeed(postgres_url: str,
                                                              tmp_path: Path) -> None:
    """As ``serve --workers 4`` does: each worker opens the store, all at the same moment."""
    openers = [subprocess.Popen([sys.executable, "-c", OPEN, postgres_url], cwd=tmp_path,
                                stderr=subprocess.PIPE, text=True) for _ in range(6)]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in openers]
    assert [code for code, _ in results] == [0] * 6, [err[-800:] for _, err in results]
    store = Store.open(postgres_url)
    try:
        with store.engine.connect() as conn:
            heads = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        assert len(heads) == 1
    finally:
        store.close()
