"""The command line: ``fhir-adapter ingest | enroll | participants | demo | serve | token``."""

from __future__ import annotations

import ipaddress
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from fhir_adapter.errors import AdapterError, ConfigError, UnusableInput
from fhir_adapter.paths import sample_bundles_dir
from fhir_adapter.pipeline import LoadSummary, Pipeline
from fhir_adapter.pipeline.orchestrator import expand_paths
from fhir_adapter.settings import Settings
from fhir_adapter.store.tokens import TokenFile
from fhir_adapter.trial.model import ParticipantRecord
from fhir_adapter.trial.visits import BASELINE, assign_visits, study_date

__all__ = ["app", "main"]

app = typer.Typer(
    name="fhir-adapter", no_args_is_help=True, add_completion=False,
    help="FHIR R4 adapter of the NCT02382874 trial: load, map and report trial data.",
)
out = Console(highlight=False)
if not out.is_terminal:
    out = Console(highlight=False, width=240)  # a file or a pipe: no wrapping of the tables
err = Console(stderr=True, highlight=False)
DEMO_DATABASE = "fhir-adapter-demo.db"


class Exit(Exception):
    """Leave with this exit code (the lines were already printed)."""

    def __init__(self, code: int) -> None:
        self.code = code


def main(argv: list[str] | None = None) -> None:
    """Entry point: the one place where errors become a line and an exit code."""
    try:
        app(args=argv, standalone_mode=False)
    except AdapterError as exc:
        located = exc.where.file or exc.where.entry is not None or exc.where.element
        err.print(f"error: {exc.line() if located else exc.message}", markup=False,
                  soft_wrap=True)
        sys.exit(exc.exit_code)
    except Exit as done:
        sys.exit(done.code)
    except typer.Abort:
        err.print("error: aborted")
        sys.exit(2)
    except Exception as exc:
        _usage_exit(exc)
    sys.exit(0)


def _usage_exit(exc: Exception) -> None:
    """Command-line mistakes (the parser's own exceptions): one line, exit 2."""
    code = getattr(exc, "exit_code", None)
    message = getattr(exc, "format_message", None)
    if callable(message):
        text = message()
        if text:  # an empty one follows the help printed for a bare ``fhir-adapter``
            err.print(f"error: {text}", markup=False)
        sys.exit(2)
    if isinstance(code, int):  # --help and friends end with an Exit carrying the code
        sys.exit(code)
    raise exc


# -- commands ----------------------------------------------------------------------------------
@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Bundles, NDJSON files, folders")],
    sender: Annotated[str, typer.Option(help="Sender name the identities are kept under")] = "",
) -> None:
    """Load FHIR Bundles or NDJSON files from disk, as the server would."""
    pipeline = _pipeline()
    summary = _ingest(pipeline, paths, sender or pipeline_sender())
    _print_summary(summary)
    if summary.exit_code:
        raise Exit(summary.exit_code)


@app.command()
def enroll(
    identifier: Annotated[str, typer.Option(help="The Patient's identifier, SYSTEM|VALUE")],
    subject: Annotated[str, typer.Option(help="The subject code in the trial")],
) -> None:
    """Enroll a patient (by identifier) with a subject code, before or after their data."""
    system, sep, value = identifier.partition("|")
    if not sep or not value:
        raise UnusableInput(f"--identifier {identifier!r} is not SYSTEM|VALUE")
    _pipeline().enroll(system, value, subject)
    out.print(f"enrolled {system}|{value} as {subject}", markup=False)


@app.command()
def participants() -> None:
    """The participants: age and Day 0, latest value per analyte, visits."""
    pipeline = _pipeline()
    out.print(participants_table(pipeline, pipeline.records()))


@app.command()
def demo(
    database: Annotated[Path, typer.Option(help="SQLite file, recreated")] = Path(DEMO_DATABASE),
) -> None:
    """The main job on a fresh embedded database: load the sample bundles, print participants."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    settings = Settings(database_url=f"sqlite:///{database.resolve()}")
    pipeline = Pipeline.from_settings(settings)
    summary = _ingest(pipeline, sample_files(), "cli")
    _print_summary(summary)
    out.print(participants_table(pipeline, pipeline.records()))
    if summary.exit_code:
        raise Exit(summary.exit_code)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """The FHIR REST endpoint (refuses a non-loopback address without tokens)."""
    settings = Settings()
    if not _loopback(host) and not TokenFile(settings.tokens_file).names():
        raise ConfigError(f"refusing to listen on {host} without tokens: create one with "
                          "`fhir-adapter token create` first")
    import uvicorn

    uvicorn.run("fhir_adapter.api:app_from_env", factory=True, host=host, port=port,
                workers=workers)


token_app = typer.Typer(help="Bearer tokens of the REST endpoint (stored hashed).")
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="Token name: the sender it acts as")],
    scope: Annotated[list[str], typer.Option(help="SMART v2 scope, e.g. system/*.cu")],
) -> None:
    """Add a token; it is printed once, alone on the last line."""
    secret = TokenFile(Settings().tokens_file).create(name, scope)
    out.print(f"token {name!r} created with scopes {' '.join(scope)}; it is shown only once:",
              markup=False)
    print(secret)


# -- helpers -----------------------------------------------------------------------------------
def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _pipeline() -> Pipeline:
    return Pipeline.from_settings(Settings())


def pipeline_sender() -> str:
    return Settings().sender


def sample_files() -> list[Path]:
    """The sample bundles, in the order their plan lists them (else sorted)."""
    folder = sample_bundles_dir()
    plan = folder / "plan.json"
    if plan.is_file():
        names = json.loads(plan.read_text(encoding="utf-8")).get("files", [])
        return [folder / name for name in names]
    files = sorted(folder.glob("*.json"))
    if not files:
        raise UnusableInput("no sample bundles found", where=None)
    return files


def _ingest(pipeline: Pipeline, paths: list[Path], sender: str) -> LoadSummary:
    files = list(expand_paths(paths))
    with _progress(len(files)) as advance:
        return pipeline.ingest_paths(files, sender=sender, progress=advance)


@contextmanager
def _progress(total: int) -> Iterator[Callable[[Path], None] | None]:
    """A bar on a terminal; nothing when the output is not one."""
    if not err.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("ingest", total=total)
        yield lambda path: bar.update(task, advance=1, description=path.name)


def _print_summary(summary: LoadSummary) -> None:
    for error in summary.errors:
        err.print(f"error: {error.line()}", markup=False, soft_wrap=True)
    table = Table(title=f"Loaded {summary.files} file(s)", title_justify="left")
    for name in ("type", "read", "kept", "replaced", "unchanged", "not kept", "errors"):
        table.add_column(name, justify="left" if name in ("type", "not kept") else "right")
    for rtype, c in sorted(summary.by_type.items()):
        reasons = "; ".join(f"{n} {why}" for why, n in sorted(c.not_kept.items()))
        table.add_row(rtype, str(c.read), str(c.kept), str(c.replaced), str(c.unchanged),
                      reasons, str(c.errors))
    out.print(table)


def participants_table(pipeline: Pipeline, records: list[ParticipantRecord]) -> Table:
    """One row per participant: subject, age at Day 0, Day 0, latest values, visits."""
    catalogue = pipeline.mapper.catalogue
    present = [a for a in catalogue.analytes
               if any(m.analyte == a for r in records for m in r.measurements)]
    table = Table(title="Participants", title_justify="left")
    for name in ("subject", "age", "Day 0"):
        table.add_column(name)
    for key in present:
        analyte = catalogue.analytes[key]
        table.add_column(f"{key}\n{analyte.unit}", justify="right")
    for name in ("visits", "missed", "out of window"):
        table.add_column(name, justify="right")
    for record in records:
        table.add_row(*_row(pipeline, record, present))
    return table


def _row(pipeline: Pipeline, record: ParticipantRecord, analytes: list[str]) -> list[str]:
    study = pipeline.study
    day0 = record.day0
    day0_date = study_date(day0.at, study) if day0 else None
    birth = record.participant.birth_date
    age = _age(birth, day0_date) if birth and day0_date else None
    latest = [_latest(record, a) for a in analytes]
    visits = missed = outside = "-"
    if day0 is not None:
        assignment = assign_visits(record.measurements, day0, study)
        with_value = {v for a in assignment.placements for v in assignment.visits(a)}
        missed_codes = {v for codes in assignment.missed.values() for v in codes} - with_value
        out_count = sum(1 for ps in assignment.placements.values() for p in ps
                        if p.window is None and p.offset.total_seconds() >= 0)
        visits, missed, outside = str(len(with_value - {BASELINE})), str(len(missed_codes)), \
            str(out_count)
    return [record.participant.subject, "-" if age is None else str(age),
            day0_date.isoformat() if day0_date else "no infusion", *latest, visits, missed,
            outside]


def _latest(record: ParticipantRecord, analyte: str) -> str:
    values = [m for m in record.measurements if m.analyte == analyte and m.counts]
    if not values:
        return ""
    m = max(values, key=lambda v: v.at)
    shown = m.value if m.value.as_tuple().exponent >= -3 else round(m.value, 3)  # type: ignore[operator]
    return f"{m.comparator or ''}{shown.normalize():f}"


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
