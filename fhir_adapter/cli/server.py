"""Commands of the REST endpoint: ``serve`` and ``token create | list``."""

from __future__ import annotations

from typing import Annotated

import typer

from fhir_adapter.cli.base import app, out
from fhir_adapter.errors import ConfigError
from fhir_adapter.settings import Settings, is_loopback
from fhir_adapter.store.tokens import TokenFile

__all__ = ["serve", "token_create", "token_list"]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """The FHIR REST endpoint (refuses a non-loopback address without tokens)."""
    settings = Settings()
    if not is_loopback(host) and not TokenFile(settings.tokens_file).names():
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


@token_app.command("list")
def token_list() -> None:
    """The names of the configured tokens (the secrets are kept only hashed)."""
    for name in TokenFile(Settings().tokens_file).names():
        print(name)
