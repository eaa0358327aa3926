"""Commands of the SMART authorisation server: ``client add | list | revoke``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from fhir_adapter.cli.base import app, out
from fhir_adapter.errors import ConfigError, Where
from fhir_adapter.settings import Settings, is_loopback
from fhir_adapter.store import Store
from fhir_adapter.store.clients import ClientRegistry, ClientRow
from fhir_adapter.store.tokens import parse_scope

__all__ = ["client_add", "client_list", "client_revoke"]

client_app = typer.Typer(help="SMART Backend Services clients (private_key_jwt) of the token "
                         "endpoint.")
app.add_typer(client_app, name="client")

_KEY_TYPES = frozenset({"RSA", "EC"})


def _registry() -> ClientRegistry:
    return ClientRegistry(Store.open(Settings().db_url()))


def _read_jwks(path: Path) -> dict[str, Any]:
    """A JWKS file of public keys, each with a ``kid`` (the assertion header names it)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable JSON file: {exc}",
                          where=Where(file=str(path))) from exc
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ConfigError(f"{path}: a JWKS needs a non-empty 'keys' list",
                          where=Where(file=str(path), element="keys"))
    for i, key in enumerate(keys):
        if not isinstance(key, dict) or key.get("kty") not in _KEY_TYPES or not key.get("kid"):
            raise ConfigError(f"{path}: keys[{i}] must be an RSA or EC key with a 'kid'",
                              where=Where(file=str(path), element=f"keys[{i}]"))
        if "d" in key:
            raise ConfigError(f"{path}: keys[{i}] holds a private key ('d'); register the "
                              "public key set only", where=Where(file=str(path),
                                                                 element=f"keys[{i}].d"))
    return {"keys": keys}


def _check_url(url: str) -> str:
    """https, or http on this machine only (a key set fetched in the clear is not trusted)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return url
    raise ConfigError(f"--jwks-url {url!r} must be an https URL (http only on loopback)")


@client_app.command("add")
def client_add(
    name: Annotated[str, typer.Option(help="The client id (iss and sub of its assertions)")],
    scope: Annotated[list[str], typer.Option(help="SMART v2 scope it may be granted, e.g. "
                                             "system/*.rs")],
    jwks_url: Annotated[str | None, typer.Option(help="Where its public keys are published")]
    = None,
    jwks_file: Annotated[Path | None, typer.Option(help="A file with its public JWKS")] = None,
) -> None:
    """Register a client with its public keys (one of --jwks-url, --jwks-file)."""
    if (jwks_url is None) == (jwks_file is None):
        raise ConfigError("give exactly one of --jwks-url and --jwks-file")
    if not name or len(name) > 64 or not name.isprintable() or " " in name:
        raise ConfigError(f"client name {name!r} must be 1-64 printable characters, no space")
    scopes = " ".join(parse_scope(s).spelling() for s in scope)
    jwks = _read_jwks(jwks_file) if jwks_file is not None else None
    url = _check_url(jwks_url) if jwks_url is not None else None
    _registry().add(ClientRow(name, jwks, url, scopes, datetime.now(UTC)))
    keys = f"{len(jwks['keys'])} key(s) from {jwks_file}" if jwks else f"keys from {url}"
    out.print(f"client {name!r} registered with scopes {scopes}; {keys}", markup=False)


@client_app.command("list")
def client_list() -> None:
    """The clients: id, scopes, keys, created, state."""
    rows = [("CLIENT", "SCOPES", "KEYS", "CREATED", "STATE")]
    for c in _registry().all():
        keys = c.jwks_url or f"{len((c.jwks or {}).get('keys', []))} key(s) registered"
        state = f"revoked {_when(c.revoked_at)}" if c.revoked_at else "active"
        rows.append((c.client_id, c.scopes, keys, _when(c.created_at), state))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True))
              + "  " + row[4])


@client_app.command("revoke")
def client_revoke(name: Annotated[str, typer.Argument(help="The client id")]) -> None:
    """Revoke a client: its access tokens are refused from their next use."""
    row = _registry().revoke(name, datetime.now(UTC))
    out.print(f"client {name!r} revoked at {_when(row.revoked_at)}", markup=False)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "-"
