"""The command-line application, its consoles, and the one place errors become exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from fhir_adapter.errors import AdapterError, Where
from fhir_adapter.pipeline import LoadSummary, Pipeline
from fhir_adapter.pipeline.entries import expand_paths
from fhir_adapter.settings import Settings

__all__ = ["Exit", "app", "err", "ingest_files", "main", "open_pipeline", "out"]

app = typer.Typer(
    name="fhir-adapter", no_args_is_help=True, add_completion=False,
    help="FHIR R4 adapter of the NCT02382874 trial: load, map and report trial data.",
)
out = Console(highlight=False)
if not out.is_terminal:
    out = Console(highlight=False, width=240)  # a file or a pipe: no wrapping of the tables
err = Console(stderr=True, highlight=False)


class Exit(Exception):
    """Leave with this exit code (the lines were already printed)."""

    def __init__(self, code: int) -> None:
        self.code = code


def main(argv: list[str] | None = None) -> None:
    """Entry point: the one place where errors become a line and an exit code."""
    try:
        app(args=argv, standalone_mode=False)
    except AdapterError as exc:
        located = exc.where != Where()
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


def open_pipeline(settings: Settings | None = None) -> Pipeline:
    return Pipeline.from_settings(settings or Settings())


def ingest_files(pipeline: Pipeline, paths: list[Path], sender: str) -> LoadSummary:
    total = sum(1 for _ in expand_paths(paths))  # named files and what folders hold
    with _progress(total) as advance:
        return pipeline.ingest_paths(paths, sender=sender, progress=advance)


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
