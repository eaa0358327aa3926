"""Commands that load data: ``ingest``, ``enroll``, ``participants`` and the ``demo``."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated

import typer

from fhir_adapter.cli.base import Exit, app, err, ingest_files, open_pipeline, out
from fhir_adapter.cli.tables import (
    NOT_KEPT_BEFORE,
    endpoint_tables,
    participants_table,
    summary_table,
)
from fhir_adapter.errors import UnusableInput, Where
from fhir_adapter.mapping import check_subject_code
from fhir_adapter.paths import sample_bundles_dir
from fhir_adapter.pipeline import LoadSummary, Pipeline
from fhir_adapter.settings import Settings
from fhir_adapter.trial.model import ParticipantEndpoints

__all__ = ["DEMO_DATABASE", "RESULTS_FILE", "demo", "enroll", "ingest", "read_roster",
           "sample_files"]

DEMO_DATABASE = "fhir-adapter-demo.db"
RESULTS_FILE = "results.json"


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Bundles, NDJSON files, folders")],
    sender: Annotated[str, typer.Option(help="Sender name the identities are kept under")] = "",
) -> None:
    """Load FHIR Bundles or NDJSON files from disk, as the server would."""
    settings = Settings()
    pipeline = open_pipeline(settings)
    summary = ingest_files(pipeline, paths, sender or settings.sender)
    print_summary(summary)
    if summary.exit_code:
        raise Exit(summary.exit_code)


@app.command()
def enroll(
    identifier: Annotated[str | None, typer.Option(
        help="The Patient's identifier, SYSTEM|VALUE")] = None,
    subject: Annotated[str | None, typer.Option(help="The subject code in the trial")] = None,
    roster: Annotated[Path | None, typer.Option(
        "--from", help="A roster CSV: columns identifier (SYSTEM|VALUE) and subject, or "
                       "system, value and subject")] = None,
) -> None:
    """Enroll a patient (by identifier) with a subject code, or every row of a roster. What
    comes after is kept; data received before the enrollment was not kept and must be sent
    (or pulled) again."""
    if roster is not None:
        if identifier or subject:
            raise UnusableInput("--from excludes --identifier and --subject")
        rows = read_roster(roster)
    elif identifier and subject:
        system, sep, value = identifier.partition("|")
        if not sep or not value:
            raise UnusableInput(f"--identifier {identifier!r} is not SYSTEM|VALUE")
        rows = [(system, value, subject)]
    else:
        raise UnusableInput("give --identifier and --subject, or --from FILE.csv")
    pipeline = open_pipeline()
    for system, value, code in rows:
        pipeline.enroll(system, value, code)
        out.print(f"enrolled {system}|{value} as {code}", markup=False)
    out.print(NOT_KEPT_BEFORE, markup=False, soft_wrap=True)


def read_roster(path: Path) -> list[tuple[str, str, str]]:
    """(system, value, subject) of each row; every row is checked before any is enrolled."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            table = list(csv.reader(fh))
    except OSError as exc:
        raise UnusableInput(f"cannot read the roster ({exc.strerror})",
                            where=Where(str(path))) from None
    header = [h.strip().lower() for h in (table[0] if table else [])]
    if header not in (["identifier", "subject"], ["system", "value", "subject"]):
        raise UnusableInput("the first row must be: identifier,subject (or "
                            "system,value,subject)", where=Where(str(path), line=1))
    rows: list[tuple[str, str, str]] = []
    for number, cells in enumerate(table[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        cells = [c.strip() for c in cells]
        if len(cells) != len(header):
            raise UnusableInput(f"{len(cells)} columns, not {len(header)}",
                                where=Where(str(path), line=number))
        if len(header) == 2:
            system, sep, value = cells[0].partition("|")
            if not sep:
                raise UnusableInput(f"identifier {cells[0]!r} is not SYSTEM|VALUE",
                                    where=Where(str(path), line=number))
            cells = [system, value, cells[1]]
        if not all(cells):
            raise UnusableInput("system, value and subject are all needed",
                                where=Where(str(path), line=number))
        check_subject_code(cells[2], [(cells[0], cells[1])],
                           where=Where(str(path), line=number, element="subject"))
        rows.append((cells[0], cells[1], cells[2]))
    return rows


@app.command()
def demo(
    database: Annotated[Path, typer.Option(help="SQLite file, recreated")] = Path(DEMO_DATABASE),
) -> None:
    """The main job on a fresh embedded database: load the sample bundles, print the
    participants and their endpoints, write the result Bundle to results.json."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    pipeline = open_pipeline(Settings(database_url=f"sqlite:///{database.resolve()}"))
    summary = ingest_files(pipeline, sample_files(), "cli")
    print_summary(summary)
    out.print(participants_table(pipeline))
    for table in endpoint_tables(endpoints_of(pipeline)):
        out.print(table)
    target = Path(RESULTS_FILE).resolve()
    bundle = pipeline.result_bundle()
    target.write_text(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    out.print(f"result Bundle ({len(bundle.get('entry') or [])} resources) written to {target}",
              markup=False, soft_wrap=True)
    if summary.exit_code:
        raise Exit(summary.exit_code)


def endpoints_of(pipeline: Pipeline) -> list[ParticipantEndpoints]:
    """Every participant's endpoints, as the results side computes them."""
    return list(pipeline.endpoints())


def sample_files() -> list[Path]:
    """The sample bundles, in the order their plan lists them (else sorted, plan.json left out)."""
    folder = sample_bundles_dir()
    plan = folder / "plan.json"
    if plan.is_file():
        names = json.loads(plan.read_text(encoding="utf-8")).get("files", [])
        if names:
            return [folder / name for name in names]
    files = sorted(p for p in folder.glob("*.json") if p.name != "plan.json")
    if not files:
        raise UnusableInput(f"no sample bundles found in {folder}")
    return files


def print_summary(summary: LoadSummary) -> None:
    for left in summary.skipped:
        err.print(f"skipped: {left.line()}", markup=False, soft_wrap=True)
    for error in summary.errors:
        err.print(f"error: {error.line()}", markup=False, soft_wrap=True)
    out.print(summary_table(summary))
