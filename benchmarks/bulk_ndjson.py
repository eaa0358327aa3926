"""A bulk NDJSON load from disk through the Pipeline into SQLite: time, rate and memory.

    python -m benchmarks.bulk_ndjson [--observations N] [--keep DIR] [--json OUT]
    python -m benchmarks.bulk_ndjson --profile [--observations N]    (cProfile of the load)

Writes a bulk export (``Patient``, ``Specimen``, ``MedicationAdministration``, ``Observation``
NDJSON files, streamed to disk), then runs the load in a child process: the participants are
enrolled and their Patients, Specimens and infusions loaded first (not timed), then the
Observation file is ingested with ``Pipeline.ingest_paths`` (timed). This process samples the
child's RSS and its read position in the Observation file, so the memory at 10 % and 100 % of the
file shows whether the load streams. Baseline, in the same run: ``orjson.loads`` of every line of
the same file.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil

from benchmarks.data import BULK_TYPES, ORDERS, read_enrollment, write_bulk_export

__all__ = ["MemoryTrace", "main", "orjson_lines", "profile", "run", "show", "timed"]

_MB = 1024 * 1024
_SETUP = BULK_TYPES[:-1]


@dataclass(slots=True)
class MemoryTrace:
    """RSS samples of the child and its workers: (seconds, fraction of the file read, MB)."""

    samples: list[tuple[float, float | None, float]] = field(default_factory=list)

    def rss_at(self, fraction: float) -> float | None:
        """RSS at the first sample that had read at least ``fraction`` of the file."""
        for _, read, rss in self.samples:
            if read is not None and read >= fraction:
                return rss
        return None

    def last_during_load(self) -> float | None:
        during = [rss for _, read, rss in self.samples if read is not None]
        return during[-1] if during else None

    @property
    def peak(self) -> float:
        return max((rss for _, _, rss in self.samples), default=0.0)


def orjson_lines(path: Path) -> tuple[float, int]:
    """Seconds to read and ``orjson.loads`` every line of ``path`` (the floor), and the count."""
    count = 0
    began = time.perf_counter()
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                orjson.loads(line)
                count += 1
    return time.perf_counter() - began, count


def _sample(child: psutil.Process, target: Path, size: int, began: float,
            trace: MemoryTrace) -> None:
    try:
        rss = child.memory_info().rss / _MB
        for worker in child.children(recursive=True):  # validating workers count too
            try:
                rss += worker.memory_info().rss / _MB
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        read = None
        for handle in child.open_files():
            if Path(handle.path) == target:
                read = min(1.0, handle.position / size) if size else 1.0
        trace.samples.append((time.perf_counter() - began, read, rss))
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        pass


def _load_in_child(folder: Path, database_url: str, interval: float) -> tuple[dict[str, Any],
                                                                            MemoryTrace]:
    target = (folder / "Observation.ndjson").resolve()
    command = [sys.executable, "-m", "benchmarks.bulk_ndjson", "--child", str(folder),
               "--database-url", database_url]
    trace = MemoryTrace()
    began = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                          cwd=Path(__file__).resolve().parents[1]) as popen:
        child = psutil.Process(popen.pid)
        while popen.poll() is None:
            _sample(child, target, target.stat().st_size, began, trace)
            time.sleep(interval)
        out = popen.stdout.read() if popen.stdout else ""
    if popen.returncode != 0:
        raise RuntimeError(f"the bulk load child exited with {popen.returncode}")
    return json.loads(out.strip().splitlines()[-1]), trace


def run(observations: int = 20_000, *, seed: int = 1, keep: Path | None = None,
        interval: float | None = None, order: str = "participant") -> dict[str, Any]:
    """Write ``observations`` Observations as NDJSON (in ``order``: see ``ORDERS``) and load
    them; the figures as a dict."""
    with tempfile.TemporaryDirectory(prefix="fa-bulk-") as tmp:
        folder = keep or Path(tmp)
        began = time.perf_counter()
        export = write_bulk_export(folder, observations, seed=seed, order=order)
        written = time.perf_counter() - began
        database_url = f"sqlite:///{folder / 'bulk.db'}"
        step = interval if interval is not None else (0.1 if observations <= 50_000 else 0.5)
        child, trace = _load_in_child(folder, database_url, step)
        floor_seconds, floor_count = orjson_lines(export.observations)
        report = _report(export.observations.stat().st_size, export.counts,
                         export.participants, written, child, trace, floor_seconds, floor_count)
        return {"order": order, **report}


def _report(size: int, counts: dict[str, int], participants: int, written: float,
            child: dict[str, Any], trace: MemoryTrace, floor_seconds: float,
            floor_count: int) -> dict[str, Any]:
    seconds = child["load_seconds"]
    at_10, at_100 = trace.rss_at(0.10), trace.last_during_load()
    return {
        "observations": counts["Observation"],
        "file_mb": round(size / _MB, 1),
        "participants": participants,
        "setup_lines": {t: counts[t] for t in _SETUP},
        "write_seconds": round(written, 2),
        "setup_seconds": round(child["setup_seconds"], 2),
        "load_seconds": round(seconds, 2),
        "observations_per_second": round(counts["Observation"] / seconds, 1),
        "kept": child["kept"],
        "not_kept": child["not_kept"],
        "errors": child["errors"],
        "orjson_seconds": round(floor_seconds, 3),
        "orjson_lines_per_second": round(floor_count / floor_seconds, 1),
        "peak_rss_mb": round(max(trace.peak, child["maxrss_mb"]), 1),
        "child_maxrss_mb": round(child["maxrss_mb"], 1),
        "rss_after_setup_mb": round(child["rss_after_setup_mb"], 1),
        "rss_at_10pct_mb": None if at_10 is None else round(at_10, 1),
        "rss_at_100pct_mb": None if at_100 is None else round(at_100, 1),
        "rss_samples": len(trace.samples),
    }


def _prepared(folder: Path, database_url: str) -> Any:
    """A Pipeline over a fresh database with the participants enrolled and their Patients,
    Specimens and infusions loaded: ready for the Observation file."""
    from fhir_adapter.pipeline import Pipeline
    from fhir_adapter.settings import Settings

    pipeline = Pipeline.from_settings(Settings(database_url=database_url))
    for system, value, subject in read_enrollment(folder / "enrollment.csv"):
        pipeline.enroll(system, value, subject)
    setup = pipeline.ingest_paths([folder / f"{t}.ndjson" for t in _SETUP], sender="bulk")
    if setup.errors:
        raise SystemExit(f"setup failed: {setup.errors[0].line()}")
    return pipeline


def _child(folder: Path, database_url: str) -> int:
    """The load itself (run in its own process so that its memory is its own)."""
    began = time.perf_counter()
    pipeline = _prepared(folder, database_url)
    setup_seconds = time.perf_counter() - began
    rss_after_setup = psutil.Process().memory_info().rss / _MB
    began = time.perf_counter()
    summary = pipeline.ingest_paths([folder / "Observation.ndjson"], sender="bulk")
    seconds = time.perf_counter() - began
    counts = summary.by_type.get("Observation")
    pipeline.store.close()
    print(json.dumps({
        "setup_seconds": setup_seconds,
        "load_seconds": seconds,
        "kept": counts.kept if counts else 0,
        "not_kept": dict(counts.not_kept) if counts else {},
        "errors": len(summary.errors),
        "rss_after_setup_mb": rss_after_setup,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))
    return 0


def profile(observations: int = 1000, *, top: int = 30, order: str = "participant") -> str:
    """Where the time of the Observation load goes (cProfile, cumulative), in this process."""
    with tempfile.TemporaryDirectory(prefix="fa-bulk-") as tmp:
        folder = Path(tmp)
        write_bulk_export(folder, observations, order=order)
        pipeline = _prepared(folder, f"sqlite:///{folder / 'bulk.db'}")
        profiler = cProfile.Profile()
        profiler.enable()
        pipeline.ingest_paths([folder / "Observation.ndjson"], sender="bulk")
        profiler.disable()
        pipeline.store.close()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--observations", type=int, default=20_000)
    parser.add_argument("--order", choices=ORDERS, default="participant",
                        help="Observation lines participant by participant, or by time taken "
                             "(every participant interleaved, as a lab feed)")
    parser.add_argument("--keep", type=Path, default=None, help="write the files here, keep them")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--profile", action="store_true", help="cProfile the load instead")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        return _child(args.child, args.database_url)
    if args.profile:
        print(profile(args.observations, order=args.order))
        return 0
    show(run(args.observations, keep=args.keep, order=args.order), args.json)
    return 0


def timed(call: Any) -> tuple[float, Any]:
    """(seconds ``call()`` took, what it returned)."""
    began = time.perf_counter()
    out = call()
    return time.perf_counter() - began, out


def show(report: dict[str, Any], json_path: Path | None) -> None:
    """Print a report, a figure per line, and write it as JSON to ``json_path`` if given."""
    for key, value in report.items():
        print(f"{key:28} {value}")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
