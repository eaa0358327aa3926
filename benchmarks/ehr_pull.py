"""``pull`` from a local Bulk Data server against ``ingest`` of the same NDJSON from disk.

    python -m benchmarks.ehr_pull [--observations N] [--json OUT]

Both load the same export (``benchmarks.data.write_bulk_export``: Patients, Specimens,
infusions and N Observations, the participants enrolled from its roster first) into a fresh
SQLite database, each in a child process of its own (so that its peak RSS is its own): the
baseline ingests the files from disk; the figure pulls them from a file server on loopback that
answers the Bulk Data kick-off, status and file requests (no auth). The ratio is the pull's
Observation rate over the ingest's (target >= 0.8).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks.data import BULK_TYPES, read_enrollment, write_bulk_export

__all__ = ["main", "run"]

_MB = 1024 * 1024


class _BulkFiles(SimpleHTTPRequestHandler):
    """Kick-off (``$export``: 202 to a status URL), status (200, the manifest of the folder's
    NDJSON files), files (served from the folder, streamed by the standard handler)."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        host = f"http://{self.headers['Host']}"
        if "$export" in self.path:
            self.send_response(202)
            self.send_header("Content-Location", f"{host}/status")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/status":
            files = sorted(Path(self.directory).glob("*.ndjson"))
            body = json.dumps({
                "transactionTime": "2026-12-01T00:00:00Z", "requiresAccessToken": False,
                "request": f"{host}/$export",
                "output": [{"type": p.stem, "url": f"{host}/{p.name}"} for p in files],
                "error": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def do_DELETE(self) -> None:
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _child(mode: str, folder: Path, database_url: str, base: str | None) -> int:
    from fhir_adapter.outbound.bulk_client import BulkClient, ExportRequest
    from fhir_adapter.pipeline import Pipeline
    from fhir_adapter.pipeline.pull import DEFAULT_TYPES, pull
    from fhir_adapter.settings import Settings

    pipeline = Pipeline.from_settings(Settings(database_url=database_url))
    for system, value, subject in read_enrollment(folder / "enrollment.csv"):
        pipeline.enroll(system, value, subject)
    began = time.perf_counter()
    if mode == "ingest":
        summary = pipeline.ingest_paths([folder / f"{t}.ndjson" for t in BULK_TYPES],
                                        sender="bulk")
    else:
        assert base is not None
        summary = pull(pipeline, BulkClient(base), ExportRequest(DEFAULT_TYPES),
                       workdir=folder.parent / "pull").summary
    seconds = time.perf_counter() - began
    pipeline.store.close()
    kept = summary.by_type.get("Observation")
    print(json.dumps({"seconds": seconds, "kept": kept.kept if kept else 0,
                      "errors": len(summary.errors),
                      "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    return 0


def _in_child(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "benchmarks.ehr_pull", "--child", *args],
                          capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parents[1])
    if done.returncode != 0:
        raise RuntimeError(f"the {args[0]} child failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(observations: int = 20_000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fa-ehr-pull-") as tmp:
        folder = Path(tmp) / "export"
        write_bulk_export(folder, observations)
        server = ThreadingHTTPServer(("127.0.0.1", 0),
                                     partial(_BulkFiles, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            ingest = _in_child("ingest", str(folder), f"sqlite:///{tmp}/ingest.db", "-")
            pulled = _in_child("pull", str(folder), f"sqlite:///{tmp}/pull.db", base)
        finally:
            server.shutdown()
            server.server_close()
    rate_ingest = ingest["kept"] / ingest["seconds"]
    rate_pull = pulled["kept"] / pulled["seconds"]
    return {"observations": observations,
            "ingest_seconds": round(ingest["seconds"], 2),
            "pull_seconds": round(pulled["seconds"], 2),
            "ingest_observations_per_second": round(rate_ingest, 1),
            "pull_observations_per_second": round(rate_pull, 1),
            "ratio": round(rate_pull / rate_ingest, 3),
            "ingest_kept": ingest["kept"], "pull_kept": pulled["kept"],
            "errors": ingest["errors"] + pulled["errors"],
            "ingest_peak_rss_mb": round(ingest["maxrss_mb"], 1),
            "pull_peak_rss_mb": round(pulled["maxrss_mb"], 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--observations", type=int, default=20_000)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", nargs=4, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        mode, folder, url, base = args.child
        return _child(mode, Path(folder), url, None if base == "-" else base)
    report = run(args.observations)
    for key, value in report.items():
        print(f"{key:34} {value}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
