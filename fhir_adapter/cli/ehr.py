"""Commands that talk to the hospital's EHR: ``keys`` (SMART Backend Services) and ``pull``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from fhir_adapter.cli.base import Exit, app, err, open_pipeline, out
from fhir_adapter.cli.load import print_summary
from fhir_adapter.errors import UnusableInput
from fhir_adapter.outbound.bulk_client import BulkClient, ExportRequest
from fhir_adapter.outbound.smart import ALGORITHMS, create_key, public_jwks, smart_auth
from fhir_adapter.pipeline.pull import DEFAULT_TYPES, PullReport, pull
from fhir_adapter.settings import Settings

__all__ = ["keys_create", "keys_show", "pull_command"]

keys_app = typer.Typer(help="The key pair of SMART Backend Services (signed client assertions).",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    alg: Annotated[str, typer.Option(help="RS384 or ES384")] = "RS384",
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="Private key file (default FHIR_ADAPTER_EHR_KEY_FILE)")] = None,
) -> None:
    """Make a key pair: the private key in a file only you can read (mode 0600), the public
    JWK Set printed (register it at the EHR, or give it serve's /.well-known/jwks.json)."""
    if alg not in ALGORITHMS:
        raise UnusableInput(f"--alg {alg!r}: one of {', '.join(ALGORITHMS)}")
    path = out_file or Settings().ehr_key_file
    jwks = create_key(path, alg)
    err.print(f"private key written to {path} (mode 0600)", markup=False, soft_wrap=True)
    out.print(json.dumps(jwks, indent=2), markup=False, soft_wrap=True)


@keys_app.command("show")
def keys_show() -> None:
    """Print the public JWK Set of the configured private key."""
    out.print(json.dumps(public_jwks([Settings().ehr_key_file]), indent=2), markup=False,
              soft_wrap=True)


@app.command("pull")
def pull_command(
    from_url: Annotated[str | None, typer.Option(
        "--from", help="The EHR's FHIR base URL (default FHIR_ADAPTER_EHR_BASE_URL)")] = None,
    group: Annotated[str | None, typer.Option(
        help="Group id: Group/ID/$export (default FHIR_ADAPTER_EHR_GROUP_ID)")] = None,
    patient_level: Annotated[bool, typer.Option(
        "--patient-level", help="Patient/$export instead of a Group or the system")] = False,
    since: Annotated[str | None, typer.Option(
        help="auto (the transactionTime of the last pull) or an instant")] = None,
    types: Annotated[list[str] | None, typer.Option(
        "--type", help="Resource type to export (repeatable); default: the trial's")] = None,
) -> None:
    """Bulk Data $export from the EHR, downloaded and loaded as one export."""
    settings = Settings()
    base = from_url or settings.ehr_base_url
    if not base:
        raise UnusableInput("--from BASE (or FHIR_ADAPTER_EHR_BASE_URL) is needed")
    group = group or (None if patient_level else settings.ehr_group_id)
    if group and patient_level:
        raise UnusableInput("--group and --patient-level exclude each other")
    if since not in (None, "auto"):
        try:
            if datetime.fromisoformat(since.replace("Z", "+00:00")).tzinfo is None:
                raise ValueError
        except ValueError:
            raise UnusableInput(f"--since {since!r}: auto, or an instant with a zone") from None
    request = ExportRequest(tuple(types or DEFAULT_TYPES), group, patient_level,
                            None if since == "auto" else since)
    pipeline = open_pipeline(settings)
    client = BulkClient(base, smart_auth(settings, base))
    report = pull(pipeline, client, request, workdir=settings.pull_dir,
                  since_auto=since == "auto", progress=_progress())
    print_pull(report)
    if report.exit_code:
        raise Exit(report.exit_code)


def _progress() -> Callable[[str], None] | None:
    """X-Progress and downloads on a terminal; nothing when the output is not one."""
    if not err.is_terminal:
        return None
    status = err.status("export")
    status.start()
    return lambda text: status.update(text)


def print_pull(report: PullReport) -> None:
    for line in report.server_errors:
        err.print(f"error: the EHR's export: {line}", markup=False, soft_wrap=True)
    print_summary(report.summary)
    since = report.since or "the beginning"
    out.print(f"pulled {report.files} file(s) from {report.base_url} since {since}"
              f"{' (resumed)' if report.resumed else ''}; next --since auto: "
              f"{report.transaction_time}", markup=False, soft_wrap=True)
    if report.withdrawn or report.deleted_unknown:
        out.print(f"deleted on the EHR: {report.withdrawn} withdrawn, "
                  f"{report.deleted_unknown} not kept here", markup=False)
    out.print(report.enrollment, markup=False, soft_wrap=True)
