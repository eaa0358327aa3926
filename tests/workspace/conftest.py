"""The sample bundles loaded once per module into a fresh SQLite store, with its workspace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fhir_adapter.pipeline import Pipeline
from fhir_adapter.pipeline.workspace_access import workspace_of
from fhir_adapter.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_bundles"


def sample_files() -> list[Path]:
    import json

    plan = json.loads((SAMPLES / "plan.json").read_text())
    return [SAMPLES / name for name in plan["files"]]


@pytest.fixture(scope="module")
def sample_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    folder = tmp_path_factory.mktemp("workspace")
    pipeline = Pipeline.from_settings(Settings(database_url=f"sqlite:///{folder / 'ws.db'}"))
    summary = pipeline.ingest_paths(sample_files(), sender="cli")
    assert not summary.errors
    yield pipeline
    workspace_of(pipeline).stop_warming()
    pipeline.store.close()
