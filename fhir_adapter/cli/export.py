"""``export``: the trial data in the formats of other fields (``export sdtm``: CDISC SDTM)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fhir_adapter.cli.base import app, open_pipeline, out
from fhir_adapter.errors import UnusableInput
from fhir_adapter.sdtm import FORMATS

__all__ = ["export_app", "sdtm"]

export_app = typer.Typer(no_args_is_help=True, help="The trial data in other standards' formats.")
app.add_typer(export_app, name="export")


@export_app.command()
def sdtm(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the datasets into")],
    format: Annotated[str, typer.Option(  # noqa: A002
        help="dataset-json (Dataset-JSON v1.1), ndjson (its NDJSON form), xpt (SAS XPT v5) "
             "or csv")] = "dataset-json",
) -> None:
    """CDISC SDTM (SDTMIG 3.4) datasets DM, LB, EX, SV and TV of every participant, and
    metadata.json describing them; pseudonymised (USUBJID from the subject code)."""
    if format not in FORMATS:
        raise UnusableInput(f"--format {format!r}: expected one of {', '.join(FORMATS)}")
    pipeline = open_pipeline()
    report = pipeline.export_sdtm(out_dir, format)
    for path in report.files:
        name = path.stem.upper()
        count = report.records.get(name)
        rows = f" ({count} rows)" if count is not None else ""
        out.print(f"{path.resolve()}{rows}", markup=False, soft_wrap=True)
