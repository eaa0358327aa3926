"""A server killed (SIGKILL) in the middle of an export, then started again: the job finishes
under the new process, and no file of the cut-short run is ever served as complete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from benchmarks.data import BULK_TYPES, read_enrollment, write_bulk_export
from fhir_adapter.api.server import settings_environment
from fhir_adapter.pipeline import Pipeline
from tests.api.api_harness import free_port, make_settings, make_tokens

pytestmark = pytest.mark.slow

OBSERVATIONS = 6_000  # about 36 participants
ASYNC = {"Accept": "application/fhir+json", "Prefer": "respond-async"}


def _serve(env: dict[str, str], port: int, cwd: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "fhir_adapter.api.server:app_from_env",
               "--factory", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, cwd=cwd)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)


def test_kill_mid_export_then_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path).model_copy(update={"export_batch": 1, "bulk_workers": 0})
    tokens = make_tokens(settings.tokens_file)
    export = write_bulk_export(tmp_path / "feed", OBSERVATIONS)
    pipeline = Pipeline.from_settings(settings)
    for system, value, subject in read_enrollment(export.enrollment):
        pipeline.enroll(system, value, subject)
    assert pipeline.ingest_paths([export.files[t] for t in BULK_TYPES]).errors == []
    expected = [e["resource"] for e in pipeline.result_bundle()["entry"]
                if e["resource"]["resourceType"] != "Provenance"]
    pipeline.store.close()
    env = {**os.environ, **settings_environment(settings)}
    headers = {"Authorization": f"Bearer {tokens['research']}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    files = tmp_path / "fhir-adapter-exports"

    server = _serve(env, port, tmp_path)
    try:
        kick = httpx.get(f"{base}/$export", headers={**headers, **ASYNC})
        assert kick.status_code == 202
        location = kick.headers["content-location"]
        deadline = time.monotonic() + 120
        while True:  # poll until the job is under way, then kill the server
            status = httpx.get(location, headers=headers)
            assert status.status_code in (202, 429), status.text
            progress = status.headers["x-progress"]
            if " of " in progress and not progress.startswith("0 of "):
                break
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    left = [p.name for p in files.rglob("*") if p.is_file()]
    assert left and all(name.endswith(".part") for name in left), left  # nothing whole yet

    port = free_port()
    env = {**env}
    base_again = f"http://127.0.0.1:{port}/fhir"
    server = _serve(env, port, tmp_path)
    try:
        location = location.replace(base, base_again)
        deadline = time.monotonic() + 180
        while True:
            status = httpx.get(location, headers=headers)
            if status.status_code == 200:
                break
            assert status.status_code in (202, 429), status.text
            assert time.monotonic() < deadline, "the job was not taken up again"
            time.sleep(float(status.headers.get("retry-after", "1")))
        manifest = status.json()
        lines = []
        for item in manifest["output"]:
            url = item["url"]
            assert url.startswith(base_again)
            body = httpx.get(url, headers=headers, timeout=120)
            assert body.status_code == 200
            found = [orjson.loads(line) for line in body.content.splitlines() if line]
            assert len(found) == item["count"]
            lines += found
    finally:
        server.terminate()
        server.wait(timeout=30)
    key = {(r["resourceType"], r["id"]) for r in expected}
    assert {(r["resourceType"], r["id"]) for r in lines} == key
    assert len(lines) == len(key)
    assert not [p for p in files.rglob("*.part")]
