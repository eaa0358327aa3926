"""The benchmarks run end to end in their smoke size and report every figure with its baseline."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]

#: figure keys each benchmark must report (smoke sizes: endpoints at N = 5 and 100)
EXPECTED = {
    "validation": {"validation.full", "validation.bare_parse"},
    "ingest_http.sqlite": {"ingest_http.sqlite"},
    "ingest_http.postgresql": {"ingest_http.postgresql"},
    "endpoints": {"endpoints.time_5", "endpoints.time_100", "endpoints.memory_100",
                  "endpoints.time_exponent", "endpoints.memory_exponent"},
    "bulk_ndjson": {"bulk_ndjson.seconds", "bulk_ndjson.rate", "bulk_ndjson.peak_rss",
                    "bulk_ndjson.rss_flat"},
    "lab_feed": {"lab_feed.rate"},
    "pull": {"pull.nothing_new", "pull.after_change", "pull.read", "pull.search_subject"},
    "ehr_pull": {"ehr_pull.rate", "ehr_pull.peak_rss"},
    "dashboard": {"dashboard.slowest_page", "dashboard.first_page", "dashboard.prepare"},
    "sdtm": {"sdtm.seconds", "sdtm.rss_flat"},
}
#: the only benchmark that may be skipped here: it needs a PostgreSQL server
MAY_SKIP = {"ingest_http.postgresql"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str],
                                                            dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench") / "figures.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--size", "smoke", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    report = json.loads(out.read_text()) if out.exists() else {}
    return done, report


@pytest.mark.slow
def test_smoke_run_exits_zero_and_writes_the_json(smoke: Any) -> None:
    done, report = smoke
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert report["size"] == "smoke"
    assert report["failed"] == []
    assert report["machine"]["nproc"] >= 1 and report["machine"]["cpu"]
    assert "baseline (same run)" in done.stdout  # the table was printed


@pytest.mark.slow
def test_every_benchmark_reports_its_figures_or_why_it_was_skipped(smoke: Any) -> None:
    _, report = smoke
    keys = {f["key"] for f in report["figures"]}
    skipped = {s["benchmark"]: s["reason"] for s in report["skipped"]}
    assert set(skipped) <= MAY_SKIP, skipped
    assert all(reason.strip() for reason in skipped.values())
    for bench, wanted in EXPECTED.items():
        if bench in skipped:
            assert not wanted & keys
        else:
            assert wanted <= keys, (bench, sorted(keys))


@pytest.mark.slow
def test_each_figure_has_a_baseline_and_the_ratio_to_it(smoke: Any) -> None:
    _, report = smoke
    assert report["figures"]
    for f in report["figures"]:
        assert isinstance(f["value"], int | float) and math.isfinite(f["value"]), f
        assert isinstance(f["baseline"], int | float) and f["baseline"] > 0, f
        assert f["baseline_label"], f
        assert f["ratio"] == pytest.approx(f["value"] / f["baseline"]), f
        assert f["passed"] in (True, False, None)
        if f["target"]:
            assert f["passed"] is not None, f


@pytest.mark.slow
def test_the_measured_work_was_really_done(smoke: Any) -> None:
    """The figures are of loads that succeeded: every Observation kept, every result computed."""
    _, report = smoke
    figures = {f["key"]: f for f in report["figures"]}
    bulk = figures["bulk_ndjson.seconds"]["details"]
    assert bulk["kept"] == bulk["observations"] and bulk["errors"] == 0
    assert bulk["rss_at_10pct_mb"] and bulk["rss_at_100pct_mb"]
    for n in (5, 100):
        point = figures[f"endpoints.time_{n}"]["details"]
        assert point["participants"] == n
        assert point["measurements"] > 100 * n  # a year of data: ~165 Observations each
        assert point["results"] > 0
    validation = figures["validation.full"]["details"]
    assert validation["problems"] == 0  # the benchmark Bundle is valid: all rules were run
    pulled = figures["ehr_pull.rate"]["details"]
    assert pulled["pull_kept"] == pulled["ingest_kept"] == pulled["observations"]
    assert pulled["errors"] == 0
    sdtm = figures["sdtm.seconds"]["details"]
    assert sdtm["kept"] == sdtm["observations"]
    assert sdtm["records"]["DM"] == sdtm["participants"] and sdtm["records"]["LB"] > 0


def test_an_unknown_benchmark_name_is_refused_not_silently_skipped(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--only", "http", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert "unknown benchmark http" in done.stderr and "ingest_http" in done.stderr
    assert not out.exists()
