"""push tells the operator what it does: each retry with its reason and time, a bound on the
run (--timeout), and a fresh push that waits by its own tries, not by the stored count."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.builders import creatinine, enrolled_bundle

EXE = Path(sys.executable).with_name("fhir-adapter")
NOWHERE = "http://127.0.0.1:1/fhir"  # nothing listens on port 1
RETRY = re.compile(r"try (\d+) failed: (.+); next try in ([\d.]+) s, at \d\d:\d\d:\d\dZ")


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_ADAPTER_")}
    env["FHIR_ADAPTER_DATABASE_URL"] = f"sqlite:///{cwd / 'adapter.db'}"
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300, check=False)


def test_push_to_nothing_says_each_retry_and_stops_at_its_timeout(tmp_path: Path) -> None:
    bundle = enrolled_bundle(creatinine("L0", 88.4, at="2024-03-09T08:00:00+03:30"),
                             creatinine("L1", 79.56))
    (tmp_path / "in.json").write_text(__import__("json").dumps(bundle))
    assert _run("ingest", str(tmp_path / "in.json"), cwd=tmp_path).returncode == 0
    for _ in range(2):  # the second run starts as the first: its tries are its own
        done = _run("push", "--to", NOWHERE, "--timeout", "4", cwd=tmp_path)
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert f"push to {NOWHERE}: at most 4 s" in done.stderr
        retries = [RETRY.search(line) for line in done.stderr.splitlines()]
        found = [m for m in retries if m is not None]
        assert found, done.stderr
        assert found[0].group(1) == "1" and "connection" in found[0].group(2)
        # the policy's first step (1 s, less its jitter), then growing, each within the bound
        assert 0 < float(found[0].group(3)) <= 1.0
        assert sum(float(m.group(3)) for m in found) <= 4.0
        assert "stopped by --timeout 4 s" in done.stdout and "stay queued" in done.stdout
    listed = _run("outbox", cwd=tmp_path)
    assert any(line.startswith("pending") for line in listed.stdout.splitlines())
    refused = _run("push", "--to", NOWHERE, "--timeout", "0", cwd=tmp_path)
    assert refused.returncode == 2 and "--timeout must be a positive" in refused.stderr
