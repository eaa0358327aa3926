"""Commands that check or publish: ``validate``, ``results``, ``push`` and ``outbox``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from fhir_adapter.cli.base import Exit, app, err, open_pipeline, out
from fhir_adapter.errors import ConfigError, UnusableInput
from fhir_adapter.pipeline.entries import expand_paths
from fhir_adapter.pipeline.validating import offline_validator
from fhir_adapter.settings import Settings
from fhir_adapter.validation.report import report_json, report_lines, validate_file

__all__ = ["outbox", "push", "results", "validate"]

EXIT_VALID, EXIT_INVALID, EXIT_UNUSABLE = 0, 1, 2


def _choice(option: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise UnusableInput(f"{option} {value!r}: expected one of {', '.join(allowed)}")
    return value


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Resources, Bundles, NDJSON files, folders")],
    profile: Annotated[str | None, typer.Option(help="Validate against this profile URL")] = None,
    format: Annotated[str, typer.Option(help="text or json (OperationOutcomes)")] = "text",  # noqa: A002
) -> None:
    """Validate offline against the project's profiles and base R4 (nothing is stored).
    Exit 0 valid (warnings allowed), 1 invalid, 2 unusable input."""
    fmt = _choice("--format", format, ("text", "json"))
    validator = offline_validator(Settings())
    validator.profile_for({}, profile=profile)  # an unknown profile: one line, exit 2
    checked = [validate_file(path, validator, profile) for path in expand_paths(paths)]
    for result in checked:
        if result.unusable:
            err.print(f"error: {result.path}: {result.unusable}", markup=False, soft_wrap=True)
    if fmt == "json":
        sys.stdout.write(json.dumps(report_json(checked), indent=2, ensure_ascii=False) + "\n")
    else:
        for line in report_lines(checked):
            out.print(line, markup=False, soft_wrap=True)
    code = EXIT_UNUSABLE if any(r.unusable for r in checked) else \
        EXIT_INVALID if any(r.invalid for r in checked) else EXIT_VALID
    if code:
        raise Exit(code)


@app.command()
def results(
    out_file: Annotated[Path | None, typer.Option("--out", help="Write to this file")] = None,
    format: Annotated[str, typer.Option(help="bundle (FHIR JSON) or csv")] = "bundle",  # noqa: A002
) -> None:
    """The result Bundle (pseudonymised), or a tidy table: one row per participant x analyte x
    visit."""
    fmt = _choice("--format", format, ("bundle", "csv"))
    pipeline = open_pipeline()
    if fmt == "csv":
        text = pipeline.results_csv()
    else:
        text = json.dumps(pipeline.result_bundle(), indent=2, ensure_ascii=False) + "\n"
    if out_file is None:
        sys.stdout.write(text)
        return
    try:
        out_file.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UnusableInput(f"cannot write {out_file}: {exc.strerror or exc}") from exc
    out.print(f"{'CSV table' if fmt == 'csv' else 'result Bundle'} written to "
              f"{out_file.resolve()}", markup=False, soft_wrap=True)


@app.command()
def push(
    to: Annotated[str | None, typer.Option("--to", help="Base URL of the research server")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Send every result again")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds this run may take; what is left stays "
                                           "queued")] = 180.0,
) -> None:
    """Send the queued result changes as transactions to a research FHIR server."""
    from fhir_adapter.outbound import RetryPolicy
    from fhir_adapter.outbound import push as send
    from fhir_adapter.outbound.smart import push_auth

    if timeout <= 0:
        raise ConfigError(f"--timeout must be a positive number of seconds, not {timeout:g}")
    settings = Settings()
    pipeline = open_pipeline(settings)
    pipeline.recompute_stale()  # what a stopped load queued is sent with the rest
    target = to or settings.push_url
    if target:
        err.print(f"push to {target}: at most {timeout:g} s", markup=False)
    auth = push_auth(settings, target) if target else None
    policy = RetryPolicy(max_retry_after=settings.push_max_retry_after)
    report = send(pipeline.outbox, pipeline.push_bundle, to_url=target,
                  token=settings.push_token, auth=auth, all=all_, timeout=timeout, policy=policy,
                  progress=lambda line: err.print(line, markup=False, soft_wrap=True))
    for line in report.lines():
        out.print(line, markup=False, soft_wrap=True)
    if report.exit_code:
        raise Exit(report.exit_code)


@app.command()
def outbox(
    all_states: Annotated[bool, typer.Option("--all-states", help="Also delivered ones")] = False,
) -> None:
    """The result changes waiting for delivery, and those that failed, with the reason."""
    from fhir_adapter.outbound import outbox_listing, render_listing

    pipeline = open_pipeline()
    states = ("pending", "failed", "delivered") if all_states else ("pending", "failed")
    for line in render_listing(outbox_listing(pipeline.outbox, states=states)):
        out.print(line, markup=False, soft_wrap=True)
