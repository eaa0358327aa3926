"""A real uvicorn serving the app on a free loopback port, in a thread or in worker processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from fhir_adapter.api import create_app
from fhir_adapter.api.server import settings_environment
from fhir_adapter.settings import Settings
from fhir_adapter.store.tokens import TokenFile

__all__ = [
    "FHIR_JSON", "SYNTHEA", "Live", "free_port", "make_settings", "make_tokens", "serve_in_thread",
    "sample_files", "serve_workers", "start", "synthea_files",
]

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SYNTHEA = DATA / "synthea"
FHIR_JSON = "application/fhir+json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_thread(app: FastAPI, port: int = 0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread (on ``port``, else a free one); yield its FHIR
    base URL."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", limit_concurrency=200)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/fhir"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@contextmanager
def serve_workers(settings: Settings, workers: int, cwd: Path) -> Iterator[str]:
    """``uvicorn --workers N`` in a child process over ``settings``; yield its FHIR base URL."""
    port = free_port()
    env = {**os.environ, **settings_environment(settings)}
    command = [
        sys.executable, "-m", "uvicorn", "fhir_adapter.api.server:app_from_env", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning",
    ]
    process = subprocess.Popen(command, env=env, cwd=cwd)
    base = f"http://127.0.0.1:{port}/fhir"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/metadata", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn workers did not start (exit {process.poll()})")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Live:
    """A running server: its base URL, its pipeline, and one token per role."""

    base: str
    pipeline: Any
    settings: Settings
    ehr: str
    research: str
    other_ehr: str

    def client(self, token: str | None, **kwargs: Any) -> httpx.Client:
        headers = {"Accept": FHIR_JSON}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.base, headers=headers, timeout=120, **kwargs)


def make_tokens(path: Path) -> dict[str, str]:
    tokens = TokenFile(path)
    return {
        "ehr": tokens.create("hospital-a", ["system/*.cu"]),
        "other_ehr": tokens.create("hospital-b", ["system/*.cu"]),
        "research": tokens.create("research-server", ["system/*.rs"]),
    }


def make_settings(tmp_path: Path, database_url: str | None = None) -> Settings:
    return Settings(
        database_url=database_url or f"sqlite:///{tmp_path / 'adapter.db'}",
        tokens_file=tmp_path / "tokens.json",
        export_dir=tmp_path / "fhir-adapter-exports",
    )


def start(settings: Settings, tokens: dict[str, str]) -> Iterator[Live]:
    from fhir_adapter.pipeline import Pipeline

    pipeline = Pipeline.from_settings(settings)
    with serve_in_thread(create_app(settings, pipeline)) as base:
        yield Live(base, pipeline, settings, tokens["ehr"], tokens["research"], tokens["other_ehr"])


def sample_files() -> list[Path]:
    """The sample participants' Bundles (FHIR only: the folder also holds the generator's plan)."""
    from fhir_adapter.paths import sample_bundles_dir

    return sorted(p for p in sample_bundles_dir().glob("*.json") if p.name != "plan.json")


def synthea_files() -> list[Path]:
    if not SYNTHEA.is_dir():
        pytest.skip(f"real Synthea data not found at {SYNTHEA}")
    return sorted(SYNTHEA.glob("*.json"))
