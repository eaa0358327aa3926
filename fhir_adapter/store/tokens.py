"""The tokens file: bearer tokens stored hashed, each with a name (the sender) and scopes."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fhir_adapter.errors import ConfigError, Issue, Where

__all__ = ["Principal", "Scope", "TokenFile", "parse_scope"]

_SCOPE = re.compile(r"^system/(\*|[A-Z][A-Za-z]+)\.([cruds]+|read|write|\*)$")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PREFIX = "fa_"
_VERSION = 1


@dataclass(frozen=True, slots=True)
class Scope:
    """One SMART v2 scope, e.g. ``system/*.cu``: a resource type (or ``*``) and its actions."""

    resource_type: str
    actions: frozenset[str]

    def allows(self, resource_type: str, action: str) -> bool:
        return self.resource_type in ("*", resource_type) and action in self.actions

    def spelling(self) -> str:
        ordered = "".join(a for a in "cruds" if a in self.actions)
        return f"system/{self.resource_type}.{ordered}"


def parse_scope(text: str) -> Scope:
    """Read one scope in SMART v2 spelling (``system/*.cu``); v1 ``.read``/``.write`` are mapped."""
    match = _SCOPE.match(text.strip())
    if not match:
        raise ConfigError(
            f"scope {text!r} is not a SMART scope such as system/*.cu or system/*.rs",
            where=Where(element="scope"),
        )
    resource_type, actions = match.groups()
    letters = _V1.get(actions, actions)
    return Scope(resource_type, frozenset(letters))


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's name (the sender) and what it may do."""

    name: str
    scopes: tuple[Scope, ...]

    def allows(self, resource_type: str, action: str) -> bool:
        return any(scope.allows(resource_type, action) for scope in self.scopes)

    def scope_text(self) -> str:
        return " ".join(scope.spelling() for scope in self.scopes)


def _digest(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode("utf-8")).hexdigest()


class TokenFile:
    """The JSON tokens file; only SHA-256 digests of the (high-entropy, random) tokens are kept.

    Reading is cached by the file's modification time, so a token created while the server runs
    is accepted without a restart.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._entries: list[dict[str, object]] = []

    # -- reading -------------------------------------------------------------------------------
    def _load(self) -> list[dict[str, object]]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._entries = None, []
            return []
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._entries = self._read()
            self._stamp = stamp
        return self._entries

    def _read(self) -> list[dict[str, object]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"tokens file {self.path} is unreadable: {exc}", where=Where(file=str(self.path))
            ) from exc
        tokens = data.get("tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, dict) for t in tokens):
            raise ConfigError(
                f"tokens file {self.path} has no 'tokens' list",
                where=Where(file=str(self.path)),
                issues=[Issue("error", "invalid", "tokens", "expected a 'tokens' list")],
            )
        return tokens

    def names(self) -> list[str]:
        return [str(entry.get("name")) for entry in self._load()]

    def configured(self) -> bool:
        """True when at least one token exists."""
        return bool(self._load())

    def verify(self, secret: str) -> Principal | None:
        """The principal of a presented token, or None when it matches no stored digest."""
        presented = _digest(secret)
        found: Principal | None = None
        for entry in self._load():
            stored = str(entry.get("hash", ""))
            # compare every entry, constant time each, so timing tells nothing about which matched
            if hmac.compare_digest(presented, stored) and found is None:
                scopes = entry.get("scopes", [])
                listed = scopes if isinstance(scopes, list) else []
                parsed = tuple(parse_scope(str(s)) for s in listed)
                found = Principal(str(entry.get("name")), parsed)
        return found

    # -- writing -------------------------------------------------------------------------------
    def create(self, name: str, scopes: list[str], *, now: datetime | None = None) -> str:
        """Add a token ``name`` with ``scopes``; return the token (shown once, never stored)."""
        if not _NAME.match(name):
            raise ConfigError(
                f"token name {name!r} must be 1-64 letters, digits, '.', '_' or '-'",
                where=Where(element="name"),
            )
        if not scopes:
            raise ConfigError("a token needs at least one scope (system/*.cu or system/*.rs)")
        parsed = [parse_scope(s) for s in scopes]
        entries = list(self._load())
        if name in {str(e.get("name")) for e in entries}:
            raise ConfigError(f"a token named {name!r} already exists in {self.path}")
        secret = _PREFIX + secrets.token_urlsafe(32)
        created = (now or datetime.now(UTC)).isoformat(timespec="seconds")
        entries.append(
            {
                "name": name,
                "hash": _digest(secret),
                "scopes": [s.spelling() for s in parsed],
                "created": created,
            }
        )
        self._write(entries)
        return secret

    def _write(self, entries: list[dict[str, object]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"version": _VERSION, "tokens": entries}, indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tokens-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._stamp = None
