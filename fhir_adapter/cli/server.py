"""Commands of the REST endpoint: ``serve`` and ``token create | list | revoke``."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Annotated

import typer

from fhir_adapter.cli.base import app, out
from fhir_adapter.errors import ConfigError
from fhir_adapter.settings import Settings
from fhir_adapter.store.tokens import TokenFile, parse_duration

__all__ = ["serve", "token_create", "token_list", "token_revoke"]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """The FHIR REST endpoint (refuses a non-loopback address without tokens)."""
    from fhir_adapter.api import serve as serve_api  # FastAPI is loaded for this command only

    _check_free(host, port)
    try:
        serve_api(Settings(), host=host, port=port, workers=workers)
    except SystemExit as exc:  # uvicorn's "startup failed" (3): taken between check and bind
        if exc.code == 3:
            raise ConfigError(f"could not start listening on {host}:{port} (see the line "
                              "above)") from None
        raise


def _check_free(host: str, port: int) -> None:
    """ConfigError (exit 2) when ``host:port`` cannot be listened on, e.g. another server has
    it; bound as uvicorn binds (SO_REUSEADDR), then let go."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                              "(another server on that port? choose one with --port)") from None


token_app = typer.Typer(help="Bearer tokens of the REST endpoint (stored hashed).")
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="Token name: the sender it acts as")],
    scope: Annotated[list[str], typer.Option(help="SMART v2 scope, e.g. system/*.cu")],
    expires_in: Annotated[str | None, typer.Option(
        help="Lifetime: seconds, or a number with s, m, h, d or w (e.g. 90d); none: no expiry",
    )] = None,
) -> None:
    """Add a token; it is printed once, alone on the last line."""
    lifetime = parse_duration(expires_in) if expires_in is not None else None
    tokens = TokenFile(Settings().tokens_file)
    secret = tokens.create(name, scope, expires_in=lifetime)
    info = next(i for i in tokens.entries() if i.name == name)
    until = f", valid until {info.expires.isoformat()}" if info.expires else ", no expiry"
    out.print(f"token {name!r} created with scopes {' '.join(scope)}{until}; it is shown only "
              "once:", markup=False)
    print(secret)


@token_app.command("list")
def token_list() -> None:
    """The tokens: name, scopes, created, expires, state (the secrets are kept only hashed)."""
    now = datetime.now(UTC)
    rows = [("NAME", "SCOPES", "CREATED", "EXPIRES", "STATE")]
    for info in TokenFile(Settings().tokens_file).entries():
        rows.append((info.name, " ".join(info.scopes), _when(info.created), _when(info.expires),
                     info.state(now) if info.revoked is None
                     else f"revoked {_when(info.revoked)}"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True))
              + "  " + row[4])


@token_app.command("revoke")
def token_revoke(name: Annotated[str, typer.Argument(help="Name of the token to revoke")]) -> None:
    """Revoke a token: refused from its next use on, by every running server."""
    info = TokenFile(Settings().tokens_file).revoke(name)
    out.print(f"token {name!r} revoked at {_when(info.revoked)}", markup=False)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "-"
