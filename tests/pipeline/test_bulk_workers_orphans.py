"""The validating workers of a bulk load die with the load: kill -9 of it leaves no process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from benchmarks.data import write_bulk_export
from fhir_adapter.pipeline.parallel import MIN_BYTES

EXE = Path(sys.executable).with_name("fhir-adapter")


@pytest.mark.slow
def test_kill_9_of_an_ingest_leaves_no_worker_running(tmp_path: Path) -> None:
    export = write_bulk_export(tmp_path / "export", 6000)
    lines = export.files["Observation"]
    assert lines.stat().st_size >= MIN_BYTES  # large enough to be validated by workers
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_ADAPTER_")}
    env.update(FHIR_ADAPTER_DATABASE_URL=f"sqlite:///{tmp_path / 'store.db'}",
               FHIR_ADAPTER_BULK_WORKERS="2")
    load = subprocess.Popen([str(EXE), "ingest", str(lines)], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parent = psutil.Process(load.pid)
    workers: list[psutil.Process] = []
    deadline = time.monotonic() + 120
    while len(workers) < 2 and time.monotonic() < deadline and load.poll() is None:
        workers = [c for c in parent.children(recursive=True)
                   if "spawn_main" in " ".join(c.cmdline())]
        time.sleep(0.05)
    assert len(workers) >= 2, "the load did not start its workers"
    os.kill(load.pid, signal.SIGKILL)
    load.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_running(w) for w in workers):
        time.sleep(0.1)
    alive = [w for w in workers if _running(w)]
    for process in alive:
        process.kill()
    assert alive == [], f"{len(alive)} worker(s) outlived the load by 10 s"


def _running(process: psutil.Process) -> bool:
    """Alive and not a zombie (a dead worker whose new parent has not reaped it yet)."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
