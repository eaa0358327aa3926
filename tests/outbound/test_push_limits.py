"""What a research server may ask of ``push``: a Retry-After waits at most the documented
maximum (FHIR_ADAPTER_PUSH_MAX_RETRY_AFTER); a refusal (4xx) is the result's final word, never
tried again, so a server that refuses everything gets about one request per result."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fhir_adapter.outbound import RetryPolicy, Timeouts, push
from fhir_adapter.pipeline import Pipeline
from fhir_adapter.settings import Settings

from .conftest import TOKEN, Sleeps
from .fhir_server import Fault, FhirTestServer
from .standin import StandinStore

SAMPLES = Path(__file__).resolve().parents[2] / "sample_bundles"


def test_a_retry_after_is_cut_to_the_setting(tmp_path: Path, server: FhirTestServer) -> None:
    pipeline: Any = Pipeline.from_settings(
        Settings(database_url=f"sqlite:///{tmp_path / 'adapter.db'}"))
    pipeline.ingest_paths([SAMPLES / "p1-FSGS-01.json"] if (SAMPLES / "p1-FSGS-01.json")
                          .exists() else sorted(SAMPLES.glob("p*-FSGS-0*.json"))[:1])
    pipeline.store.close()
    server.plan.append(Fault("status", status=429, retry_after="100000"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_ADAPTER_")}
    env.update(FHIR_ADAPTER_DATABASE_URL=f"sqlite:///{tmp_path / 'adapter.db'}",
               FHIR_ADAPTER_PUSH_TOKEN=TOKEN, FHIR_ADAPTER_PUSH_MAX_RETRY_AFTER="2")
    started = time.monotonic()
    done = subprocess.run([str(Path(sys.executable).with_name("fhir-adapter")), "push", "--to",
                           server.base_url], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "next try in 2.0 s" in done.stderr
    assert time.monotonic() - started < 120
    assert Settings().push_max_retry_after == 120.0  # the documented default


def test_a_server_refusing_everything_gets_one_request_per_result(store: StandinStore,
                                                                 sleeps: Sleeps) -> None:
    keys = [f"S-{n}.serum-creatinine.creatinine.W2" for n in range(1, 21)]
    for n, key in enumerate(keys, 1):
        store.put_result(key, f"S-{n}", "0.5")
    server = FhirTestServer(token=TOKEN, rules=[
        lambda r: "refused" if r.get("resourceType") == "Observation" else None]).start()
    try:
        report = push(store, store.build, to_url=server.base_url, token=TOKEN, sleep=sleeps,
                      policy=RetryPolicy(rng=lambda: 0.0),
                      timeouts=Timeouts(connect=2.0, read=10.0))
    finally:
        server.stop()
    assert (report.delivered, report.failed, report.pending) == (0, len(keys), 0)
    assert sleeps == []  # a refusal is not retried
    assert server.posts <= len(keys) + 1, server.posts  # bisecting took 2n - 1
