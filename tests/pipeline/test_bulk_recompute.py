"""A bulk load recomputes each participant once, at its end, whatever the order of its lines:
an export participant by participant and a lab feed ordered by time give the same results,
every one a first version; a load that stops leaves a queue that the next one takes up."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.data import BULK_TYPES, BulkExport, read_enrollment, write_bulk_export
from fhir_adapter.pipeline import Pipeline, bulk
from fhir_adapter.settings import Settings

KEY = "k" * 32  # one pseudonym key for every store here: published ids are comparable

OBSERVATIONS = 700  # five participants, some of them partly (the generator gives ~165 each)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BulkExport]:
    root = tmp_path_factory.mktemp("exports")
    return {order: write_bulk_export(root / order, OBSERVATIONS, order=order)
            for order in ("participant", "time")}


def _open(url: str) -> Pipeline:
    return Pipeline.from_settings(Settings(database_url=url, bulk_workers=0,
                                           pseudonym_key=KEY))


def _load(pipeline: Pipeline, export: BulkExport) -> None:
    for system, value, subject in read_enrollment(export.enrollment):
        pipeline.enroll(system, value, subject)
    summary = pipeline.ingest_paths([export.files[t] for t in BULK_TYPES], sender="bulk")
    assert summary.errors == []


def _results(pipeline: Pipeline) -> dict[str, tuple[str, int, Any]]:
    """Each result's status, version and resource, its references to the source Observations
    made alike (they name the store's own ids, which differ between two stores)."""
    with pipeline.store.read() as unit:
        return {r.key: (r.status, r.version, _sources_alike(r.resource)) for r in unit.results()}


def _sources_alike(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "Observation/*" if k == "reference" and str(v).startswith("Observation/")
                else _sources_alike(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_sources_alike(v) for v in value]
    return value


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(bulk, "CHUNK_LINES", 50)  # every participant spans many chunks
    yield


def test_time_ordered_lines_give_the_results_of_a_per_participant_export(
        exports: dict[str, BulkExport], tmp_path: Path, small_chunks: None) -> None:
    by_order = {}
    for order, export in exports.items():
        pipeline = _open(f"sqlite:///{tmp_path / order}.db")
        _load(pipeline, export)
        by_order[order] = _results(pipeline)
        with pipeline.store.read() as unit:
            assert unit.stale_subjects() == []
        pipeline.store.close()
    per_participant, by_time = by_order["participant"], by_order["time"]
    assert len(per_participant) > 100
    assert by_time == per_participant
    # each participant computed once: no result amended by a later chunk of the same load
    assert {(status, version) for status, version, _ in by_time.values()} == {("final", 1)}


def test_results_of_a_bulk_load_are_those_a_fresh_computation_gives(
        exports: dict[str, BulkExport], store_url: str, small_chunks: None) -> None:
    pipeline = _open(store_url)
    try:
        _load(pipeline, exports["time"])
        stored = _results(pipeline)
        with pipeline.store.transaction() as unit:
            subjects = [p.subject for p in unit.participants()]
            again = pipeline.publication.recomputer.recompute(unit, subjects)
        assert len(subjects) == exports["time"].participants
        assert (again.created, again.amended, again.withdrawn) == ([], [], [])
        assert again.unchanged == len(stored)
    finally:
        pipeline.store.close()


def test_a_load_that_stops_leaves_its_queue_to_the_next_load(
        exports: dict[str, BulkExport], store_url: str, small_chunks: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = _open(store_url)
    with monkeypatch.context() as patched:  # the process stops before recomputing
        patched.setattr(Pipeline, "recompute_stale", lambda self: None)
        _load(pipeline, exports["time"])
    with pipeline.store.read() as unit:
        queued = unit.stale_subjects()
        assert list(unit.results()) == []
    pipeline.store.close()
    assert len(queued) == exports["time"].participants

    reopened = _open(store_url)
    try:
        with reopened.store.read() as unit:  # opening is no write: the queue waits
            assert unit.stale_subjects() == queued
        reopened.ingest_paths([])  # the next load takes it up
        with reopened.store.read() as unit:
            assert unit.stale_subjects() == []
            assert {r.subject for r in unit.results()} == set(queued)
    finally:
        reopened.store.close()


def test_a_transaction_leaves_its_participants_off_the_queue(store_url: str) -> None:
    pipeline = _open(store_url)
    try:
        with pipeline.store.transaction() as unit:
            unit.mark_stale(["S-01", "S-02", "S-01"])
            unit.mark_stale(["S-02"])  # queued twice: once on the queue
        with pipeline.store.transaction() as unit:
            assert unit.stale_subjects() == ["S-01", "S-02"]
            pipeline.publication.recomputer.recompute(unit, ["S-01"])
        with pipeline.store.read() as unit:
            assert unit.stale_subjects() == ["S-02"]
    finally:
        pipeline.store.close()


def test_two_processes_recomputing_the_queue_at_once_share_it(
        exports: dict[str, BulkExport], store_url: str, small_chunks: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two pipelines (as two server workers starting) take the queue at once: on PostgreSQL
    each claims participants the other has not, on SQLite they wait for each other; either way
    no error, the queue ends empty and every result is a first version."""
    loader = _open(store_url)
    with monkeypatch.context() as patched:
        patched.setattr(Pipeline, "recompute_stale", lambda self: None)
        _load(loader, exports["time"])
        a, b = _open(store_url), _open(store_url)
    loader.store.close()
    errors: list[BaseException] = []

    def drain(p: Pipeline) -> None:
        try:
            p.publication.recomputer.recompute_stale(batch=1)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=drain, args=(p,)) for p in (a, b)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    try:
        assert errors == []
        with a.store.read() as unit:
            assert unit.stale_subjects() == []
            rows = unit.results()
        assert {r.subject for r in rows} == {
            s for _, _, s in read_enrollment(exports["time"].enrollment)}
        assert {(r.status, r.version) for r in rows} == {("final", 1)}
    finally:
        a.store.close()
        b.store.close()
