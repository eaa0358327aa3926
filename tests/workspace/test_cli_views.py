"""The command-line views on the sample bundles: tables within 100 columns, whole CSV/JSON,
the statisticians' table with its dictionary."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workspace.conftest import sample_files
from tests.workspace.plan_rules import PLAN, counting_values, window

EXE = Path(sys.executable).parent / "fhir-adapter"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("cli") / "cli.db"
    done = run("ingest", *map(str, sample_files()), db=path)
    assert done.returncode == 0, done.stderr
    yield path


def run(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FHIR_ADAPTER_DATABASE_URL": f"sqlite:///{db}", "COLUMNS": "100"}
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, env=env,
                          cwd=db.parent, timeout=300, check=False)


@pytest.mark.parametrize("args", [("participants",), ("visits",),
                                  ("visits", "--analyte", "urine-protein-24h"),
                                  ("endpoints", "FSGS-02"), ("queries",)])
def test_tables_fit_100_columns(db: Path, args: tuple[str, ...]) -> None:
    done = run(*args, db=db)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) > 5
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)


def test_participants_csv_and_json_are_whole(db: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(run("participants", "--format", "csv",
                                               db=db).stdout)))
    assert [r["subject"] for r in rows] == [p["subject"] for p in PLAN["participants"]]
    by = {r["subject"]: r for r in rows}
    assert by["FSGS-04"]["missed_visits"] == "M7" and by["FSGS-05"]["missed_visits"] == "M5"
    assert by["FSGS-05"]["values_out_of_window"] == "9"
    assert by["FSGS-01"]["sex"] == "female" and by["FSGS-01"]["age_at_day0"] == "9"
    assert "latest_creatinine (mg/dL)" in rows[0]
    data = json.loads(run("participants", "--format", "json", db=db).stdout)
    assert data[3]["missed_visits"] == ["M7"]


def test_the_visits_grid_marks_m7_and_m5(db: Path) -> None:
    lines = run("visits", db=db).stdout.splitlines()
    header = next(line for line in lines if line.startswith("subject"))
    columns = header.split()
    for subject, visit, symbol in (("FSGS-04", "M7", "○"), ("FSGS-05", "M5", "◇")):
        row = next(line for line in lines if line.startswith(subject)).split()
        assert row[columns.index(visit)] == symbol
    assert any("○ missed" in line for line in lines)  # the legend


def test_unknown_subject_and_format_are_one_line(db: Path) -> None:
    done = run("endpoints", "NOBODY", db=db)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "NOBODY" in done.stderr
    done = run("participants", "--format", "xml", db=db)
    assert done.returncode == 2 and "--format" in done.stderr


def test_the_dataset_has_alt_at_every_visit_and_participant_rows(db: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(run("dataset", db=db).stdout)))
    dictionary = list(csv.DictReader(io.StringIO(run("dataset", "--dictionary", db=db).stdout)))
    assert [d["column"] for d in dictionary] == list(rows[0])  # every column described
    plan = {p["subject"]: p for p in PLAN["participants"]}
    for subject, participant in plan.items():
        visits = {window(o) or "" for v, o in counting_values(participant)
                  if v["analyte"] == "alt" and o.total_seconds() > 0}
        mine = {r["visit"] for r in rows if r["subject"] == subject and r["analyte"] == "alt"
                and r["level"] == "visit" and r["visit"] != "BL"}
        assert mine == visits, subject
    grade = next(r for r in rows if r["subject"] == "FSGS-04" and r["analyte"] == "alt"
                 and r["visit"] == "M3")
    assert grade["ctcae_grade"] == "1" and grade["category_label"] == "grade 1: mild"
    assert grade["baseline"] == "68" and grade["published"] == "false"
    levels = {r["endpoint"]: r for r in rows if r["subject"] == "FSGS-01"
              and r["level"] == "participant"}
    assert levels["proteinuria-response-m12"]["category_label"] == "complete remission"
    assert levels["creatinine-category-w2"]["value"] == "D"  # 0.55 -> 0.47 after the amendment
    assert all(r["sex"] and r["age_at_day0"] for r in rows)
    identifying = {s for p in PLAN["participants"] for s in p["identifying"]}
    text = run("dataset", db=db).stdout
    assert not any(s in text for s in identifying if len(s) > 4)


def test_the_dashboard_command_serves_the_pages_on_loopback(db: Path) -> None:
    import socket
    import time

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "FHIR_ADAPTER_DATABASE_URL": f"sqlite:///{db}",
           "FHIR_ADAPTER_TOKENS_FILE": str(db.parent / "no-tokens.json")}
    server = subprocess.Popen([str(EXE), "dashboard", "--port", str(port), "--no-open"],
                              env=env, cwd=db.parent, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/ui", timeout=30)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.5)
        assert answer.status_code == 200 and 'data-state="missed"' in answer.text
    finally:
        server.terminate()
        server.wait(timeout=30)
