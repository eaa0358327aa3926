"""The SDTM export of a large store against ``results --format csv`` of the same store.

    python -m benchmarks.sdtm [--observations N] [--json OUT]

The store is filled by a bulk NDJSON load (not timed, see ``bulk_ndjson``). Then, in this
process: ``export sdtm --format ndjson`` (every domain, streamed), then the tidy result CSV
written to a file (the baseline: the same participants' endpoints computed and written). The
RSS of the process is sampled every 50 ms during the export: flat means the RSS at the end of
the export is no higher than 1.25x the highest RSS of its first tenth.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.bulk_ndjson import _prepared, show

__all__ = ["main", "run"]

_MB = 1024 * 1024


class _Sampler:
    """RSS of this process every ``every`` seconds while running."""

    def __init__(self, every: float = 0.05) -> None:
        self.every = every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._process = psutil.Process()

    def _run(self) -> None:
        began = time.perf_counter()
        while not self._stop.is_set():
            self.samples.append((time.perf_counter() - began,
                                 self._process.memory_info().rss / _MB))
            self._stop.wait(self.every)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def halves(self) -> tuple[float, float]:
        """(highest RSS of the first half, highest RSS of the second half), MB."""
        middle = self.samples[-1][0] / 2
        first = max(rss for t, rss in self.samples if t <= middle)
        second = max((rss for t, rss in self.samples if t > middle), default=first)
        return first, second


def run(observations: int = 20_000) -> dict[str, Any]:
    from benchmarks.data import write_bulk_export

    with tempfile.TemporaryDirectory(prefix="fa-sdtm-") as tmp:
        folder = Path(tmp)
        export = write_bulk_export(folder, observations)
        pipeline = _prepared(folder, f"sqlite:///{folder / 'sdtm.db'}")
        try:
            load = pipeline.ingest_paths([export.observations], sender="bulk")
            rss_before = psutil.Process().memory_info().rss / _MB
            began = time.perf_counter()
            with _Sampler() as sampler:
                report = pipeline.export_sdtm(folder / "sdtm", "ndjson")
            sdtm_s = time.perf_counter() - began
            began = time.perf_counter()
            (folder / "results.csv").write_text(pipeline.results_csv(), encoding="utf-8")
            csv_s = time.perf_counter() - began
        finally:
            pipeline.store.close()
        first, second = sampler.halves()
        sizes = {p.name: p.stat().st_size for p in report.files}
    return {
        "observations": observations, "participants": export.participants,
        "kept": getattr(load.by_type.get("Observation"), "kept", None),
        "sdtm_seconds": round(sdtm_s, 3), "csv_seconds": round(csv_s, 3),
        "ratio": round(sdtm_s / csv_s, 3) if csv_s else None,
        "records": report.records, "bytes": sizes,
        "rss_before_export_mb": round(rss_before, 1),
        "rss_first_half_mb": round(first, 1), "rss_second_half_mb": round(second, 1),
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
