"""The adapter's own results pushed end to end: sample Bundles ingested, pushed, corrected, pushed.

Expected values come from ``sample_bundles/plan.json`` and its README (FSGS-01's creatinine at
W2 is amended from 0.54 to 0.47 mg/dL by ``zz-corrections.json``), not from the code under test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from fhir_adapter.outbound import push
from fhir_adapter.pipeline import Pipeline
from fhir_adapter.settings import Settings

from .conftest import TOKEN
from .fhir_server import Fault, FhirTestServer

SAMPLES = Path(__file__).resolve().parents[2] / "sample_bundles"
PARTICIPANT_FILES = sorted(SAMPLES.glob("p*-FSGS-0*.json"))
CORRECTIONS = SAMPLES / "zz-corrections.json"
RESULT_SYSTEM = "https://fhir-adapter.org/fhir/endpoint-result"
CREA_W2 = "FSGS-01.serum-creatinine.creatinine.W2"

pytestmark = [
    pytest.mark.skipif(not PARTICIPANT_FILES, reason="sample_bundles/ has no participant Bundles"),
]


def _pipeline(tmp_path: Path) -> Pipeline:
    return Pipeline.from_settings(Settings(database_url=f"sqlite:///{tmp_path / 'adapter.db'}"))


def _results_on(server: FhirTestServer) -> list[dict[str, Any]]:
    with server.lock:
        current = [h[-1] for k, h in server.store.versions.items() if k.startswith("Observation/")]
    return [o for o in current
            if any(i.get("system") == RESULT_SYSTEM for i in o.get("identifier") or [])]


def _assert_no_duplicates(server: FhirTestServer) -> None:
    values = Counter(i["value"] for o in _results_on(server) for i in o["identifier"]
                     if i["system"] == RESULT_SYSTEM)
    assert values and max(values.values()) == 1, values.most_common(3)


def test_push_again_then_corrections(tmp_path: Path, server: FhirTestServer) -> None:
    pipeline = _pipeline(tmp_path)
    pipeline.ingest_paths(PARTICIPANT_FILES)

    first = push(pipeline.outbox, pipeline.push_bundle, to_url=server.base_url, token=TOKEN)
    assert (first.failed, first.pending, first.exit_code) == (0, 0, 0), first.lines()
    assert first.delivered > 0
    _assert_no_duplicates(server)
    delivered = len(_results_on(server))
    [crea] = server.search("Observation", f"{RESULT_SYSTEM}|{CREA_W2}")
    assert crea["valueQuantity"]["value"] == 0.54 and crea["meta"]["versionId"] == "1"
    assert len(server.search("Patient", "https://fhir-adapter.org/fhir/subject|FSGS-01")) == 1

    again = push(pipeline.outbox, pipeline.push_bundle, to_url=server.base_url, token=TOKEN)
    assert (again.delivered, again.requests, again.exit_code) == (0, 0, 0)
    assert len(_results_on(server)) == delivered

    pipeline.ingest_paths([CORRECTIONS])
    amended = push(pipeline.outbox, pipeline.push_bundle, to_url=server.base_url, token=TOKEN)
    assert (amended.failed, amended.pending, amended.exit_code) == (0, 0, 0), amended.lines()
    [crea] = server.search("Observation", f"{RESULT_SYSTEM}|{CREA_W2}")
    assert crea["valueQuantity"]["value"] == 0.47
    assert crea["meta"]["versionId"] == "2"  # one version more
    assert crea["status"] == "amended"
    # the withdrawn 24 h protein: what was derived from it is now entered-in-error there too
    assert any(o["status"] == "entered-in-error" for o in _results_on(server))
    _assert_no_duplicates(server)
    assert len(_results_on(server)) == delivered


def test_cli_push_killed_mid_delivery_and_restarted(tmp_path: Path,
                                                    server: FhirTestServer) -> None:
    pipeline = _pipeline(tmp_path)
    pipeline.ingest_paths(PARTICIPANT_FILES)
    env = {**os.environ, "FHIR_ADAPTER_DATABASE_URL": f"sqlite:///{tmp_path / 'adapter.db'}",
           "FHIR_ADAPTER_PUSH_TOKEN": TOKEN}
    script = Path(sys.executable).with_name("fhir-adapter")
    command = [str(script), "push", "--to", server.base_url]
    stall = Fault("stall")
    server.plan.append(stall)
    first = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert stall.arrived.wait(120), "the sender never reached the server"
        os.kill(first.pid, signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    stall.release.set()  # the server completes what the dead sender began
    second = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    assert " 0 failed, 0 pending" in second.stdout
    _assert_no_duplicates(server)
    [crea] = server.search("Observation", f"{RESULT_SYSTEM}|{CREA_W2}")
    assert crea["valueQuantity"]["value"] == 0.54
