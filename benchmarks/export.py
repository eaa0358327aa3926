"""Bulk Data export of the results against building the whole result Bundle, on one store.

    python -m benchmarks.export [--observations N] [--json OUT]

The store is filled by a bulk NDJSON load (not timed). Then, in this process, first the export
(every result of every participant written as NDJSON, as the server's background job does it)
while a thread samples the process's RSS and the job's progress; then a correction of one
participant's last creatinine and a ``_since`` export; last the baseline, the whole result
Bundle of the same store (what ``$endpoint-results`` returns), built in memory and serialised.
The export runs first so that its RSS is not inflated by what the Bundle left.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import psutil

from benchmarks.bulk_ndjson import _prepared, show
from benchmarks.pull import _last_creatinine_of_the_first_participant

__all__ = ["main", "run"]

_MB = 1024 * 1024


class _Sampler:
    """RSS of this process every 20 ms, with the export's progress (done, total) then."""

    def __init__(self, jobs: Any, job_id: str) -> None:
        self.jobs, self.job_id = jobs, job_id
        self.samples: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        process = psutil.Process()
        while not self._stop.is_set():
            job = self.jobs.get(self.job_id)
            done, total = (job.done, job.total) if job is not None else (0, 0)
            self.samples.append((process.memory_info().rss / _MB, done, total))
            self._stop.wait(0.02)

    def rss_at(self, fraction: float) -> float | None:
        """The RSS when the export had gone through ``fraction`` of the participants."""
        for rss, done, total in self.samples:
            if total and done >= fraction * total:
                return round(rss, 1)
        return None


def _export(service: Any, parameters: dict[str, Any]) -> tuple[float, Any, _Sampler]:
    job = service.jobs.create(request="benchmark", parameters=parameters, client="bench")
    claimed = service.jobs.claim(owner=service.worker.runner.owner, stale=timedelta(hours=1),
                                 dead=set())
    assert claimed is not None and claimed.id == job.id
    with _Sampler(service.jobs, job.id) as sampler:
        began = time.perf_counter()
        service.worker.runner.run(claimed)
        seconds = time.perf_counter() - began
    return seconds, service.jobs.get(job.id), sampler


def run(observations: int = 20_000) -> dict[str, Any]:
    from benchmarks.data import write_bulk_export
    from fhir_adapter.pipeline.bulk_export import ExportRequest
    from fhir_adapter.pipeline.exports_service import start_exports
    from fhir_adapter.settings import Settings

    with tempfile.TemporaryDirectory(prefix="fa-export-") as tmp:
        folder = Path(tmp)
        export = write_bulk_export(folder, observations)
        url = f"sqlite:///{folder / 'export.db'}"
        pipeline = _prepared(folder, url)
        try:
            pipeline.ingest_paths([export.observations], sender="bulk")
            service = start_exports(pipeline.publication, Settings(database_url=url),
                                    run=False)
            pipeline.result_bundle(pipeline.store.clock())  # the summary, as a server has it
            rss_before = psutil.Process().memory_info().rss / _MB
            export_s, job, sampler = _export(service, ExportRequest().to_json())
            assert job is not None and job.status == "completed", job
            lines = sum(f["count"] for f in job.output["files"])
            peak = max(s[0] for s in sampler.samples)
            since = job.transaction_time
            line = _last_creatinine_of_the_first_participant(export.observations)
            line["status"] = "amended"
            line["valueQuantity"]["value"] = round(line["valueQuantity"]["value"] * 1.5, 2)
            pipeline.process_resource(line, sender="bulk")
            since_s, since_job, _ = _export(service, ExportRequest(since=since).to_json())
            assert since_job is not None and since_job.status == "completed"
            since_lines = sum(f["count"] for f in since_job.output["files"])
            began = time.perf_counter()
            bundle = pipeline.result_bundle()
            text = orjson.dumps(bundle)
            whole_s = time.perf_counter() - began
            rss_after_bundle = psutil.Process().memory_info().rss / _MB
            entries = len(bundle["entry"])
            del bundle, text
        finally:
            pipeline.store.close()
    return {
        "observations": observations, "participants": export.participants,
        "export_seconds": round(export_s, 3), "export_lines": lines,
        "whole_bundle_seconds": round(whole_s, 3), "whole_bundle_entries": entries,
        "export_vs_bundle": round(export_s / whole_s, 3),
        "rss_before_mb": round(rss_before, 1), "export_peak_rss_mb": round(peak, 1),
        "export_peak_vs_before": round(peak / rss_before, 3),
        "export_rss_at_10pct_mb": sampler.rss_at(0.1),
        "export_rss_at_100pct_mb": sampler.rss_at(1.0),
        "rss_after_whole_bundle_mb": round(rss_after_bundle, 1),
        "since_export_seconds": round(since_s, 3), "since_export_lines": since_lines,
        "since_vs_full_export": round(since_s / export_s, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--observations", type=int, default=20_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    show(run(args.observations), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
