"""Serving: the loopback rule, then uvicorn with one app (or one app per worker process)."""

from __future__ import annotations

import os

import uvicorn
from fastapi import FastAPI

from fhir_adapter.api.app import create_app
from fhir_adapter.api.security import check_bind
from fhir_adapter.api.ui import follow_data
from fhir_adapter.settings import Settings
from fhir_adapter.store.tokens import TokenFile

__all__ = ["app_from_env", "serve", "settings_environment"]


def settings_environment(settings: Settings) -> dict[str, str]:
    """``settings`` as FHIR_ADAPTER_* variables, so that worker processes rebuild the same ones."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is not None and value != "":
            env[f"FHIR_ADAPTER_{name.upper()}"] = str(value)
    env["FHIR_ADAPTER_DATABASE_URL"] = settings.db_url()
    return env


def served_app(settings: Settings) -> FastAPI:
    """The app a served process runs: the dashboard's snapshot is made from the start (in
    the background), so that its first page does not wait for the whole store to be read."""
    app = create_app(settings)
    follow_data(app, at_once=True)
    return app


def app_from_env() -> FastAPI:
    """The app of one uvicorn worker process, from FHIR_ADAPTER_* variables."""
    return served_app(Settings())


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    log_level: str = "info",
) -> None:
    """Run the REST endpoint until interrupted; ConfigError when the address is not allowed."""
    check_bind(host, TokenFile(settings.tokens_file))
    if workers <= 1:
        uvicorn.run(served_app(settings), host=host, port=port, log_level=log_level)
        return
    os.environ.update(settings_environment(settings))
    uvicorn.run(
        "fhir_adapter.api.server:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
    )
