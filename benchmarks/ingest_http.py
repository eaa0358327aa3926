"""Ingest over HTTP: transaction Bundles of 1,000 Observations POSTed to a running server.

    python -m benchmarks.ingest_http [--bundles N] [--size 1000] [--database-url URL]
                                     [--workers W] [--profile]

Starts ``uvicorn`` (W worker processes) over a fresh database (a SQLite file by default; a
PostgreSQL URL with ``--database-url``), enrolls one participant, then POSTs N transaction Bundles
(one Patient + ``size`` lab Observations each, all new) one after the other and reports
Observations per second, and the ratio to ``fhir.resources``' bare parse of the same Bundles in
the same run. ``--profile`` also runs one Bundle through the pipeline in this process under
cProfile and prints where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fhir.resources.R4B.bundle import Bundle  # noqa: E402

from fhir_adapter.api.server import settings_environment  # noqa: E402
from fhir_adapter.paths import mappings_dir  # noqa: E402
from fhir_adapter.pipeline import Pipeline  # noqa: E402
from fhir_adapter.settings import Settings  # noqa: E402
from fhir_adapter.store.tokens import TokenFile  # noqa: E402
from fhir_adapter.trial.definitions import AnalyteCatalogue  # noqa: E402

__all__ = ["lab_transaction", "main", "run"]

MRN = ("urn:oid:2.16.840.1.113883.3.9999.1", "BENCH-1")
_LOINC = "http://loinc.org"
_UCUM = "http://unitsofmeasure.org"
#: values are 1 to 4.6 in the first unit of each code; these units need more to be plausible
#: (mappings/analytes.toml): creatinine 50 to 230 umol/L, height 40 to 184 cm
_SCALE = {"umol/L": 50, "cm": 40}


def _lab_codes() -> list[tuple[str, str, str]]:
    """(LOINC code, display, unit) of the measured analytes of the catalogue."""
    catalogue = AnalyteCatalogue.from_file(mappings_dir() / "analytes.toml")
    out = []
    for analyte in catalogue.analytes.values():
        if analyte.computed:
            continue
        for code in analyte.codes:
            if code.system == _LOINC and code.units:
                out.append((code.code, code.display or code.code, next(iter(code.units))))
    return out


def lab_transaction(
    size: int, *, seed: int, codes: list[tuple[str, str, str]], run_id: str = ""
) -> dict[str, Any]:
    """A transaction: the benchmark Patient, then ``size`` new lab Observations about it."""
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    entries: list[dict[str, Any]] = [{
        "fullUrl": patient_url,
        "resource": {"resourceType": "Patient", "gender": "female", "birthDate": "2011-05-06",
                     "identifier": [{"system": MRN[0], "value": MRN[1]}]},
        "request": {"method": "POST", "url": "Patient",
                    "ifNoneExist": f"identifier={MRN[0]}|{MRN[1]}"},
    }]
    start = datetime(2016, 1, 4, 8, 0, tzinfo=UTC)
    for n in range(size):
        code, display, unit = codes[n % len(codes)]
        at = start + timedelta(hours=seed * size + n)
        entries.append({
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": {
                "resourceType": "Observation",
                "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.9999.2",
                                "value": f"LAB-{run_id}{seed}-{n}"}],
                "status": "final",
                "category": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "laboratory"}]}],
                "code": {"coding": [{"system": _LOINC, "code": code, "display": display}]},
                "subject": {"reference": patient_url},
                "effectiveDateTime": at.isoformat(),
                "valueQuantity": {"value": round((1 + (n % 37) / 10) * _SCALE.get(unit, 1), 2),
                                  "unit": unit,
                                  "system": _UCUM, "code": unit},
            },
            "request": {"method": "POST", "url": "Observation"},
        })
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(
    settings: Settings, workers: int, cwd: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, **settings_environment(settings)}
    command = [sys.executable, "-m", "uvicorn", "fhir_adapter.api.server:app_from_env",
               "--factory", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, cwd=cwd)
    base = f"http://127.0.0.1:{port}/fhir"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/metadata", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start")


def _bare_parse(bodies: list[bytes]) -> float:
    """Seconds for fhir.resources to parse the same Bundles from their bytes (best of 3)."""
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        for body in bodies:
            Bundle.model_validate_json(body)
        best = min(best, time.perf_counter() - began)
    return best


def run(database_url: str | None = None, *, bundles: int = 5, size: int = 1000,
        workers: int = 1, profile: bool = False) -> dict[str, Any]:
    """POST ``bundles`` transactions of ``size`` Observations; the figures as a dict."""
    codes = _lab_codes()
    with tempfile.TemporaryDirectory(prefix="fa-bench-") as folder:
        tmp = Path(folder)
        settings = Settings(database_url=database_url or f"sqlite:///{tmp / 'bench.db'}",
                            tokens_file=tmp / "tokens.json")
        token = TokenFile(settings.tokens_file).create("bench-ehr", ["system/*.cu"])
        pipeline = Pipeline.from_settings(settings)
        pipeline.enroll(MRN[0], MRN[1], "BENCH-001")
        run_id = uuid.uuid4().hex[:8] + "-"  # new Observations even on a database used before
        bodies = [orjson.dumps(lab_transaction(size, seed=i, codes=codes, run_id=run_id))
                  for i in range(bundles)]
        process, base = _start_server(settings, workers, tmp)
        try:
            headers = {"Content-Type": "application/fhir+json", "Authorization": f"Bearer {token}",
                       "Prefer": "return=minimal"}
            with httpx.Client(timeout=600, headers=headers) as client:
                laps = []
                for body in bodies:
                    began = time.perf_counter()
                    response = client.post(base, content=body)
                    laps.append(time.perf_counter() - began)
                    if response.status_code != 200:
                        raise RuntimeError(f"{response.status_code}: {response.text[:500]}")
                seconds = sum(laps)
        finally:
            process.terminate()
            process.wait(timeout=60)
        parse_seconds = _bare_parse(bodies)
        report: dict[str, Any] = {
            "backend": pipeline.store.backend,
            "workers": workers,
            "bundles": bundles,
            "observations": bundles * size,
            "seconds": round(seconds, 3),
            "seconds_per_bundle": [round(lap, 3) for lap in laps],
            "observations_per_second": round(bundles * size / seconds, 1),
            "bare_parse_seconds": round(parse_seconds, 3),
            "bare_parse_observations_per_second": round(bundles * size / parse_seconds, 1),
            "ratio_to_bare_parse": round(seconds / parse_seconds, 2),
        }
        if profile:
            extra = lab_transaction(size, seed=bundles, codes=codes, run_id=run_id)
            report["profile"] = _profile(pipeline, extra)
        pipeline.store.close()
    return report


def _profile(pipeline: Pipeline, bundle: dict[str, Any], top: int = 30) -> str:
    """Where the time of one Bundle goes inside the pipeline (cProfile, cumulative)."""
    profiler = cProfile.Profile()
    profiler.enable()
    pipeline.process_bundle(bundle, sender="bench-ehr", source="profile", prefer="minimal")
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=5)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    report = run(args.database_url, bundles=args.bundles, size=args.size, workers=args.workers,
                 profile=args.profile)
    profile = report.pop("profile", None)
    for key, value in report.items():
        print(f"{key:36} {value}")
    if profile:
        print(profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
