"""Endpoint computation for N participants with a year of data each: time, memory, growth.

    python -m benchmarks.endpoints [N ...]          (default: 5 100 1000 10000)

Each N runs in its own process. There the generator's Bundles of N participants are mapped once
through the Mapper into ParticipantRecords (not timed); then ``compute`` of every participant and
``summarize`` of the study are timed (best of a few repeats for small N), and run once more under
``tracemalloc`` for the peak memory they allocate (the records themselves excluded). The growth
exponents are the least-squares slopes of log(time) and log(memory) against log(N).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, cast

__all__ = ["growth_exponent", "main", "measure", "run"]

_MB = 1024 * 1024


def _compute_all(records: list[Any]) -> int:
    from benchmarks.data import definitions
    from fhir_adapter.trial.endpoints import compute, summarize

    defs = definitions()
    results = [compute(r, defs.study, defs.catalogue) for r in records]
    summarize(results, defs.study.median_changes)
    return sum(len(r.visit_results) + len(r.participant_results) for r in results)


def measure(n: int, *, seed: int = 1) -> dict[str, Any]:
    """Build ``n`` records, then time and trace their endpoint computation (this process)."""
    from benchmarks.data import participant_records

    began = time.perf_counter()
    records = participant_records(n, seed=seed)
    build = time.perf_counter() - began
    repeats = 5 if n <= 100 else 3 if n <= 1000 else 1
    best = math.inf
    results = 0
    for _ in range(repeats):
        gc.collect()
        began = time.perf_counter()
        results = _compute_all(records)
        best = min(best, time.perf_counter() - began)
    gc.collect()
    tracemalloc.start()
    _compute_all(records)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "participants": n,
        "measurements": sum(len(r.measurements) for r in records),
        "results": results,
        "build_seconds": round(build, 3),
        "seconds": best,
        "per_participant_ms": best / n * 1000,
        "peak_traced_mb": round(peak / _MB, 2),
        "process_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "repeats": repeats,
    }


def growth_exponent(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(y) against log(x): 1.0 is linear growth."""
    usable = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    if len(usable) < 2:
        return None
    mean_x = sum(x for x, _ in usable) / len(usable)
    mean_y = sum(y for _, y in usable) / len(usable)
    spread = sum((x - mean_x) ** 2 for x, _ in usable)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in usable) / spread


def _in_child(n: int, seed: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.endpoints", "--child", str(n), "--seed", str(seed)]
    out = subprocess.run(command, check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    return cast(dict[str, Any], json.loads(out.stdout.strip().splitlines()[-1]))


def run(sizes: tuple[int, ...] = (5, 100, 1000, 10_000), *, seed: int = 1) -> dict[str, Any]:
    """Every size in its own process; the figures and the growth exponents as a dict."""
    points = [_in_child(n, seed) for n in sizes]
    # the fit leaves out N < 100 when enough larger sizes remain: there fixed costs dominate
    fitted = [p for p in points if p["participants"] >= 100]
    fitted = fitted if len(fitted) >= 2 else points
    return {
        "sizes": points,
        "time_exponent": growth_exponent([(p["participants"], p["seconds"]) for p in fitted]),
        "memory_exponent": growth_exponent(
            [(p["participants"], p["peak_traced_mb"]) for p in fitted]),
        "fitted_sizes": [p["participants"] for p in fitted],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[5, 100, 1000, 10_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", type=int, default=None, help="measure one N in this process")
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(args.child, seed=args.seed)))
        return 0
    report = run(tuple(args.sizes), seed=args.seed)
    for p in report["sizes"]:
        print(f"N={p['participants']:>6}  {p['seconds']:9.3f} s  {p['per_participant_ms']:7.3f} "
              f"ms/participant  peak {p['peak_traced_mb']:8.1f} MB traced")
    print(f"time exponent {report['time_exponent']}, memory exponent {report['memory_exponent']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
