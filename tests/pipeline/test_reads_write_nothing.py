"""A read never writes: opening a pipeline, pulling, reading and searching results leave every
table as it was; the queue a stopped load left waits for the next writer (a load, a server)."""

from __future__ import annotations

import json
from pathlib import Path

from fhir_adapter.api import create_app
from fhir_adapter.paths import sample_bundles_dir
from fhir_adapter.pipeline import Pipeline
from fhir_adapter.settings import Settings


def _settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'adapter.db'}", bulk_workers=0,
                    tokens_file=tmp_path / "tokens.json")


def test_reads_of_an_empty_store_write_nothing(tmp_path: Path) -> None:
    pipeline = Pipeline.from_settings(_settings(tmp_path))
    before = pipeline.store.row_counts()
    assert sum(before.values()) == 0
    bundle = pipeline.result_bundle()
    assert [e["resource"]["resourceType"] for e in bundle["entry"]][:2] == \
        ["ResearchStudy", "PlanDefinition"]
    pipeline.search_results("Observation", {"subject": ["Patient/x"]})
    pipeline.results_csv()
    assert pipeline.store.row_counts() == before  # no pseudonym key made by a read
    pipeline.store.close()


def test_a_write_makes_the_key_and_reads_then_use_it(tmp_path: Path) -> None:
    pipeline = Pipeline.from_settings(_settings(tmp_path))
    pipeline.ingest_paths([sample_bundles_dir() / "p1-FSGS-01.json"])
    assert pipeline.store.row_counts()["adapter_secret"] == 1
    first = json.dumps(pipeline.result_bundle(), sort_keys=True)
    counts = pipeline.store.row_counts()
    again = Pipeline.from_settings(_settings(tmp_path))  # another process, the same store
    assert again.store.row_counts() == counts  # opening wrote nothing
    ids = {e["resource"]["id"] for e in json.loads(first)["entry"]}
    assert {e["resource"]["id"] for e in again.result_bundle()["entry"]} == ids
    pipeline.store.close()
    again.store.close()


def test_a_server_starting_takes_up_the_queue(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    pipeline = Pipeline.from_settings(settings)
    pipeline.ingest_paths([sample_bundles_dir() / "p1-FSGS-01.json"])
    with pipeline.store.transaction() as unit:
        unit.mark_stale(["FSGS-01"])  # as a load that stopped before its end leaves it
    reopened = Pipeline.from_settings(settings)
    with reopened.store.read() as unit:
        assert unit.stale_subjects() == ["FSGS-01"]  # opening is no write
    create_app(settings)  # the server's own pipeline, as uvicorn's factory builds it
    with reopened.store.read() as unit:
        assert unit.stale_subjects() == []
    pipeline.store.close()
    reopened.store.close()
