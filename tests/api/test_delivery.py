"""With a push URL configured, the server runs the outbox worker for its lifetime."""

from __future__ import annotations

from pathlib import Path

from fhir_adapter.api import create_app
from fhir_adapter.pipeline import Pipeline
from tests.api.api_harness import make_settings, serve_in_thread


def test_push_worker_lives_with_the_server(tmp_path: Path) -> None:
    settings = make_settings(tmp_path).model_copy(update={"push_url": "http://127.0.0.1:9/fhir"})
    app = create_app(settings, Pipeline.from_settings(settings))
    with serve_in_thread(app):
        worker = app.state.push_worker
        assert worker is not None and worker.running
    assert not worker.running  # stopped with the server
    (tmp_path / "b").mkdir()
    quiet = make_settings(tmp_path / "b")
    plain = create_app(quiet, Pipeline.from_settings(quiet))
    with serve_in_thread(plain):
        assert plain.state.push_worker is None
