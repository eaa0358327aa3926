"""Run every benchmark, print each figure next to its baseline, and write the figures as JSON.

    python -m benchmarks.run [--size smoke|full] [--json OUT] [--only NAME,...]
                             [--bulk-result FILE]

Every figure comes with a baseline measured in the same run and the ratio value / baseline.
A benchmark whose module is missing or whose service (PostgreSQL) is unreachable is skipped with
the reason; one that breaks is reported as failed and the exit code is 1. ``--bulk-result``
reuses a bulk NDJSON report written earlier by ``python -m benchmarks.bulk_ndjson --json FILE``
(the 1,000,000-Observation load takes 8 to 26 minutes on two cores, by the day's machine speed).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["SIZES", "Figure", "Size", "machine", "main", "run_all"]

OUT = Path(__file__).resolve().parent / "out" / "latest.json"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_PACE = 1_000_000 / 600  # Observations/s that load 1,000,000 in 10 minutes


@dataclass(frozen=True, slots=True)
class Size:
    validation_observations: int
    validation_repeats: int
    http_bundles: int
    http_bundle_size: int
    endpoint_sizes: tuple[int, ...]
    bulk_observations: int
    feed_observations: int
    pull_observations: int
    sdtm_observations: int


SIZES = {
    "smoke": Size(200, 2, 1, 200, (5, 100), 1_000, 1_000, 1_000, 1_000),
    "full": Size(1000, 5, 5, 1000, (5, 100, 1000, 10_000), 1_000_000, 100_000, 100_000,
                 1_000_000),
}


class Skip(Exception):
    """A benchmark that cannot run here (its module is missing, a service is unreachable)."""


@dataclass(slots=True)
class Figure:
    """One measured figure, its baseline from the same run, and the target it is held to."""

    key: str
    title: str
    value: float
    unit: str
    baseline: float
    baseline_label: str
    target: str = ""
    passed: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.baseline else None

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def _module(name: str) -> Any:
    try:
        return importlib.import_module(f"benchmarks.{name}")
    except ModuleNotFoundError as exc:
        raise Skip(f"module benchmarks.{name} is not importable ({exc})") from None


# -- the benchmarks ------------------------------------------------------------------------------
def validation(size: Size) -> list[Figure]:
    r = _module("validation").run(size.validation_observations, repeats=size.validation_repeats)
    n = r["observations"]
    return [
        Figure("validation.full", f"full validation, Bundle of {n:,} Observations",
               r["full_validation_s"], "s", r["bare_parse_s"], "fhir.resources bare parse",
               "<= 1.5x bare parse", r["full_validation_s"] <= 1.5 * r["bare_parse_s"], r),
        Figure("validation.bare_parse", f"fhir.resources parse, {n:,} Observations",
               r["bare_parse_s"], "s", r["orjson_loads_s"], "orjson.loads (floor)"),
    ]


def _http(size: Size, database_url: str | None, backend: str) -> Figure:
    r = _module("ingest_http").run(database_url, bundles=size.http_bundles,
                                   size=size.http_bundle_size)
    rate = r["observations_per_second"]
    target, passed = ("", None) if backend != "sqlite" else (">= 2,000 Obs/s", rate >= 2000)
    return Figure(f"ingest_http.{backend}",
                  f"HTTP transactions, {r['bundles']} x {size.http_bundle_size} Obs, {backend}",
                  rate, "Obs/s", r["bare_parse_observations_per_second"],
                  "fhir.resources bare parse of the same Bundles", target, passed, r)


def ingest_http_sqlite(size: Size) -> list[Figure]:
    return [_http(size, None, "sqlite")]


@contextmanager
def _postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database (dropped afterwards), or Skip when none is reachable."""
    try:
        import psycopg
        from sqlalchemy.engine import make_url
    except ImportError as exc:
        raise Skip(f"PostgreSQL driver missing ({exc})") from None
    url = make_url(os.environ.get("FHIR_ADAPTER_BENCH_POSTGRES_URL")
                   or os.environ.get("FHIR_ADAPTER_TEST_POSTGRES_URL") or POSTGRES_URL)
    try:
        admin = psycopg.connect(host=url.host, port=url.port or 5432, user=url.username,
                                password=url.password, dbname=url.database, autocommit=True,
                                connect_timeout=3)
    except psycopg.OperationalError as exc:
        raise Skip(f"PostgreSQL at {url.host}:{url.port or 5432} unreachable ({exc})") from None
    name = f"fa_bench_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ingest_http_postgresql(size: Size) -> list[Figure]:
    with _postgres_database() as database_url:
        return [_http(size, database_url, "postgresql")]


def endpoints(size: Size) -> list[Figure]:
    r = _module("endpoints").run(size.endpoint_sizes)
    points = {p["participants"]: p for p in r["sizes"]}
    smallest = points[min(points)]
    per_one = smallest["seconds"] / smallest["participants"]
    mem_one = smallest["peak_traced_mb"] / smallest["participants"]
    figures = []
    for n, p in points.items():
        target, passed = ("< 5 s", p["seconds"] < 5) if n == 1000 else ("", None)
        figures.append(Figure(
            f"endpoints.time_{n}", f"endpoints of {n:,} participants (a year each)", p["seconds"],
            "s", per_one * n, f"N x per-participant time at N={smallest['participants']}",
            target, passed, p))
    largest = points[max(points)]
    figures.append(Figure(
        f"endpoints.memory_{largest['participants']}",
        f"peak memory of the computation, N={largest['participants']:,}",
        largest["peak_traced_mb"], "MB", mem_one * largest["participants"],
        f"N x per-participant memory at N={smallest['participants']}", details=largest))
    for kind in ("time", "memory"):
        exponent = r[f"{kind}_exponent"]
        if exponent is not None:
            figures.append(Figure(
                f"endpoints.{kind}_exponent", f"{kind} growth exponent (log-log slope, N = "
                f"{', '.join(f'{n:,}' for n in r['fitted_sizes'])})", exponent, "",
                1.0, "linear growth", "<= 1.15 (linear)", exponent <= 1.15))
    return figures


def bulk_ndjson(size: Size, reuse: Path | None = None) -> list[Figure]:
    if reuse is not None:
        r = json.loads(reuse.read_text())
        r["reused_from"] = str(reuse)
    else:
        r = _module("bulk_ndjson").run(size.bulk_observations)
    n = r["observations"]
    projected = r["load_seconds"] * 1_000_000 / n
    scaled = "" if n == 1_000_000 else f" (projected to 1,000,000: {projected:,.0f} s)"
    rss_10, rss_100 = r["rss_at_10pct_mb"], r["rss_at_100pct_mb"]
    figures = [
        Figure("bulk_ndjson.seconds", f"bulk NDJSON load, {n:,} Observations, SQLite",
               r["load_seconds"], "s", r["orjson_seconds"], "orjson.loads of every line",
               f"< 600 s for 1,000,000{scaled}", projected < 600, r),
        Figure("bulk_ndjson.rate", "bulk NDJSON load rate", r["observations_per_second"],
               "Obs/s", r["orjson_lines_per_second"], "orjson.loads lines/s",
               f">= {_PACE:,.0f} Obs/s", r["observations_per_second"] >= _PACE),
        Figure("bulk_ndjson.peak_rss", "peak RSS of the loading process", r["peak_rss_mb"], "MB",
               r["rss_after_setup_mb"], "RSS before the Observation file", "< 500 MB",
               r["peak_rss_mb"] < 500),
    ]
    if rss_10 and rss_100:
        figures.append(Figure("bulk_ndjson.rss_flat", "RSS at 100 % of the file vs at 10 %",
                              rss_100, "MB", rss_10, "RSS at 10 % of the file",
                              "<= 1.25x (flat)", rss_100 <= 1.25 * rss_10))
    return figures


def lab_feed(size: Size) -> list[Figure]:
    """The same Observations ordered by time (every participant interleaved, as a hospital's
    lab feed) against participant by participant: the order of the lines must not cost."""
    module = _module("bulk_ndjson")
    n = size.feed_observations
    by_time = module.run(n, order="time")
    by_participant = module.run(n, order="participant")
    rate, base = by_time["observations_per_second"], by_participant["observations_per_second"]
    return [Figure("lab_feed.rate", f"bulk NDJSON, {n:,} Observations ordered by time",
                   rate, "Obs/s", base, "the same, participant by participant",
                   ">= 0.8x (order does not cost)", rate >= 0.8 * base,
                   {"time": by_time, "participant": by_participant})]


def pull(size: Size) -> list[Figure]:
    """Incremental result pulls against the whole result Bundle, on a store of many
    participants."""
    r = _module("pull").run(size.pull_observations)
    whole = r["whole_seconds"]
    label = f"the whole result Bundle ({r['whole_entries']:,} entries)"
    where = f"{r['participants']:,} participants"
    # with a few participants the fixed costs dominate: the ratios are judged from 100 on
    judged = r["participants"] >= 100

    def held(value: float, most: float, target: str) -> tuple[str, bool | None]:
        return (target, value <= most * whole) if judged else ("", None)

    return [
        Figure("pull.nothing_new", f"_since pull, nothing new, {where}",
               r["nothing_new_seconds"], "s", whole, label,
               *held(r["nothing_new_seconds"], 0.1, "<= 0.1x the whole Bundle"), r),
        Figure("pull.after_change", f"_since pull after a correction, {where}",
               r["after_change_seconds"], "s", whole, label,
               *held(r["after_change_seconds"], 0.1, "<= 0.1x the whole Bundle")),
        Figure("pull.read", f"read of one Observation by id, {where}",
               r["read_observation_seconds"], "s", whole, label,
               *held(r["read_observation_seconds"], 0.2, "<= 0.2x the whole Bundle")),
        Figure("pull.search_subject", f"Observation?subject= (one participant), {where}",
               r["search_subject_seconds"], "s", whole, label,
               *held(r["search_subject_seconds"], 0.1, "<= 0.1x the whole Bundle")),
    ]


def ehr_pull(size: Size) -> list[Figure]:
    """``pull`` from a local Bulk Data file server against ``ingest`` of the same NDJSON files
    from disk, each in a child process of its own (its peak RSS its own)."""
    r = _module("ehr_pull").run(size.pull_observations)
    n = r["observations"]
    rate, base = r["pull_observations_per_second"], r["ingest_observations_per_second"]
    return [
        Figure("ehr_pull.rate", f"pull from a local Bulk server, {n:,} Observations", rate,
               "Obs/s", base, "ingest of the same NDJSON files from disk", ">= 0.8x ingest",
               rate >= 0.8 * base, r),
        Figure("ehr_pull.peak_rss", "peak RSS of the pull", r["pull_peak_rss_mb"], "MB",
               r["ingest_peak_rss_mb"], "peak RSS of the ingest", "<= 1.25x (flat)",
               r["pull_peak_rss_mb"] <= 1.25 * r["ingest_peak_rss_mb"]),
    ]


def dashboard(size: Size) -> list[Figure]:
    """Every dashboard page on a store of many participants, against ``participants --format
    csv`` on the same store."""
    r = _module("dashboard").run(size.pull_observations)
    base = r["participants_csv_seconds"]
    label = "`fhir-adapter participants --format csv`"
    where = f"{r['participants']:,} participants"
    judged = r["participants"] >= 100
    return [
        Figure("dashboard.slowest_page", f"slowest dashboard page ({r['slowest_page']}), "
               f"{where}", r["slowest_page_seconds"], "s", base, label,
               "< 1 s" if judged else "", r["slowest_page_seconds"] < 1 if judged else None, r),
        Figure("dashboard.first_page", f"first page after a change (builds the snapshot), "
               f"{where}", r["first_page_seconds"], "s", base, label),
        Figure("dashboard.prepare", f"shared pages made in the background after a change, "
               f"{where}", r["prepare_seconds"], "s", base, label),
    ]


def sdtm(size: Size) -> list[Figure]:
    """``export sdtm`` (NDJSON, every domain) against ``results --format csv`` of the same
    store, and the highest RSS of the export's second half against its first half."""
    r = _module("sdtm").run(size.sdtm_observations)
    where = f"{r['observations']:,} Observations, {r['participants']:,} participants"
    return [
        Figure("sdtm.seconds", f"export sdtm (ndjson), {where}", r["sdtm_seconds"], "s",
               r["csv_seconds"], "results --format csv of the same store", "<= 2x the CSV",
               r["sdtm_seconds"] <= 2 * r["csv_seconds"], r),
        Figure("sdtm.rss_flat", "highest RSS of the export's second half vs its first",
               r["rss_second_half_mb"], "MB", r["rss_first_half_mb"],
               "highest RSS of its first half", "<= 1.25x (flat)",
               r["rss_second_half_mb"] <= 1.25 * r["rss_first_half_mb"]),
    ]


BENCHMARKS: dict[str, Callable[[Size], list[Figure]]] = {
    "validation": validation,
    "ingest_http.sqlite": ingest_http_sqlite,
    "ingest_http.postgresql": ingest_http_postgresql,
    "endpoints": endpoints,
    "bulk_ndjson": bulk_ndjson,
    "lab_feed": lab_feed,
    "pull": pull,
    "ehr_pull": ehr_pull,
    "dashboard": dashboard,
    "sdtm": sdtm,
}


# -- running, reporting --------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    """What the figures were measured on (they mean little without it)."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    try:
        import psutil

        ram_gb: float | None = round(psutil.virtual_memory().total / 1024**3, 1)
    except ImportError:
        ram_gb = None
    return {"nproc": os.cpu_count(), "cpu": cpu or platform.machine(), "ram_gb": ram_gb,
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "platform": platform.platform()}


def run_all(size_name: str, only: list[str] | None = None,
            bulk_result: Path | None = None) -> dict[str, Any]:
    """Every benchmark (or those named); a report with figures, skips and failures."""
    size = SIZES[size_name]
    report: dict[str, Any] = {
        "size": size_name, "command": " ".join(["python -m benchmarks.run", *sys.argv[1:]]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
        "figures": [], "skipped": [], "failed": [], "seconds": {},
    }
    for name, bench in BENCHMARKS.items():
        if only and name not in only and name.split(".")[0] not in only:
            continue
        began = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            figures = bulk_ndjson(size, bulk_result) if name == "bulk_ndjson" else bench(size)
        except Skip as exc:
            report["skipped"].append({"benchmark": name, "reason": str(exc)})
            continue
        except Exception as exc:  # a broken benchmark is reported, the others still run
            report["failed"].append({"benchmark": name, "error": f"{type(exc).__name__}: {exc}"})
            continue
        finally:
            report["seconds"][name] = round(time.perf_counter() - began, 1)
        report["figures"] += [f.as_json() for f in figures]
    report["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    return report


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{text} {unit}".strip()


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    m = report["machine"]
    table = Table(title=f"fhir-adapter benchmarks ({report['size']}): {m['nproc']} cores "
                        f"{m['cpu']}, {m['ram_gb']} GB, load {m['load_average']}")
    for column in ("figure", "value", "baseline (same run)", "ratio", "target", "result"):
        table.add_column(column, justify="right" if column in ("value", "ratio") else "left")
    for f in report["figures"]:
        verdict = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "-"}[f["passed"]]
        table.add_row(f["title"], _number(f["value"], f["unit"]),
                      f"{_number(f['baseline'], f['unit'])} ({f['baseline_label']})",
                      "-" if f["ratio"] is None else f"{f['ratio']:.3g}x", f["target"] or "-",
                      verdict)
    console = Console(width=160)
    console.print(table)
    for s in report["skipped"]:
        console.print(f"skipped {s['benchmark']}: {s['reason']}")
    for s in report["failed"]:
        console.print(f"[red]failed {s['benchmark']}: {s['error']}[/]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="smoke")
    parser.add_argument("--json", type=Path, default=OUT, help=f"default {OUT}")
    parser.add_argument("--only", default="", help=f"comma-separated: {', '.join(BENCHMARKS)}")
    parser.add_argument("--bulk-result", type=Path, default=None,
                        help="reuse this bulk_ndjson report instead of loading again")
    args = parser.parse_args(argv)
    only = [n.strip() for n in args.only.split(",") if n.strip()] or None
    known = set(BENCHMARKS) | {name.split(".")[0] for name in BENCHMARKS}
    unknown = sorted(set(only or ()) - known)
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    report = run_all(args.size, only, args.bulk_result)
    print_report(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"figures written to {args.json}")
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
