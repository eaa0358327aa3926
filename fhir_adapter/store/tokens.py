"""The tokens file: bearer tokens stored hashed, each with a name (the sender), scopes, the time
it was created and, optionally, when it expires or was revoked."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fhir_adapter.errors import AuthError, ConfigError, Issue, Where

__all__ = ["ACTION_WORDS", "UI", "Principal", "Scope", "TokenFile", "TokenInfo", "parse_duration",
           "parse_scope"]

_SCOPE = re.compile(r"^system/(\*|[A-Z][A-Za-z]+)\.([cruds]+|read|write|\*)$")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PREFIX = "fa_"
#: The scope of the dashboard's pages (and the "resource type" it is checked as).
UI = "ui"
_VERSION = 1
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """A duration such as ``3600``, ``90m``, ``12h``, ``30d`` or ``2w`` (seconds when bare)."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise ConfigError(
            f"duration {text!r} is not a positive number of seconds or a number followed by "
            "s, m, h, d or w (e.g. 30d)",
            where=Where(element="expires-in"),
        )
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


@dataclass(frozen=True, slots=True)
class Scope:
    """One SMART v2 scope, e.g. ``system/*.cu``: a resource type (or ``*``) and its actions."""

    resource_type: str
    actions: frozenset[str]

    def allows(self, resource_type: str, action: str) -> bool:
        return self.resource_type in ("*", resource_type) and action in self.actions

    def spelling(self) -> str:
        if self.resource_type == UI:
            return UI
        ordered = "".join(a for a in "cruds" if a in self.actions)
        return f"system/{self.resource_type}.{ordered}"


def parse_scope(text: str) -> Scope:
    """Read one scope in SMART v2 spelling (``system/*.cu``); v1 ``.read``/``.write`` are mapped.
    ``ui`` is the dashboard's own scope: it reads the pages, no FHIR resource."""
    if text.strip() == UI:
        return Scope(UI, frozenset("r"))
    match = _SCOPE.match(text.strip())
    if not match:
        raise ConfigError(
            f"scope {text!r} is not a SMART scope such as system/*.cu or system/*.rs (or ui)",
            where=Where(element="scope"),
        )
    resource_type, actions = match.groups()
    letters = _V1.get(actions, actions)
    return Scope(resource_type, frozenset(letters))


#: SMART v2 scope actions (SMART App Launch 2.2, scopes-and-launch-context.html).
ACTION_WORDS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}

@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's name (the sender) and what it may do."""

    name: str
    scopes: tuple[Scope, ...]
    expires: datetime | None = None

    def allows(self, resource_type: str, action: str) -> bool:
        return any(scope.allows(resource_type, action) for scope in self.scopes)

    def scope_text(self) -> str:
        return " ".join(scope.spelling() for scope in self.scopes)

    def refusal(self, resource_type: str, action: str, because: str = "") -> str:
        """Why this principal may not do ``action`` on ``resource_type`` (the 403's text)."""
        word = ACTION_WORDS.get(action, action)
        why = f": {because};" if because else ":"
        return (f"token {self.name!r} (scopes: {self.scope_text() or 'none'}) may not {word} "
                f"{resource_type}{why} that needs system/{resource_type}.{action} or "
                f"system/*.{action}")


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What ``token list`` shows of one token (never its secret)."""

    name: str
    scopes: tuple[str, ...]
    created: datetime | None
    expires: datetime | None
    revoked: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and self.expires <= now:
            return "expired"
        return "active"


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _listed(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _digest(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode("utf-8")).hexdigest()


class TokenFile:
    """The JSON tokens file; only SHA-256 digests of the (high-entropy, random) tokens are kept.

    Reading is cached by the file's modification time, so a token created while the server runs
    is accepted without a restart, and one revoked is refused at its next use; expiry is
    weighed against ``clock`` at every use.
    """

    def __init__(self, path: Path | str, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self.path = Path(path)
        self.clock = clock
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

    def entries(self) -> list[TokenInfo]:
        """Every token, revoked and expired ones included, in the order they were created."""
        return [
            TokenInfo(
                str(e.get("name")),
                tuple(str(x) for x in _listed(e.get("scopes"))),
                _instant(e.get("created")),
                _instant(e.get("expires")),
                _instant(e.get("revoked")),
            )
            for e in self._load()
        ]

    def verify(self, secret: str) -> Principal | None:
        """The principal of a presented token, or None when it matches no stored digest.

        A token that matches but was revoked or has expired raises ``AuthError`` saying so."""
        presented = _digest(secret)
        found: dict[str, object] | None = None
        for entry in self._load():
            stored = str(entry.get("hash", ""))
            # compare every entry, constant time each, so timing tells nothing about which matched
            if hmac.compare_digest(presented, stored) and found is None:
                found = entry
        if found is None:
            return None
        name = str(found.get("name"))
        revoked = _instant(found.get("revoked"))
        if revoked is not None:
            raise AuthError(f"the bearer token {name!r} was revoked at {revoked.isoformat()}")
        expires = _instant(found.get("expires"))
        if expires is not None and expires <= self.clock():
            raise AuthError(f"the bearer token {name!r} expired at {expires.isoformat()}")
        scopes = tuple(parse_scope(str(s)) for s in _listed(found.get("scopes")))
        return Principal(name, scopes, expires)

    # -- writing -------------------------------------------------------------------------------
    def create(self, name: str, scopes: list[str], *, now: datetime | None = None,
               expires_in: timedelta | None = None) -> str:
        """Add a token ``name`` with ``scopes`` (valid for ``expires_in`` when given); return
        the token (shown once, never stored)."""
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
        moment = (now or self.clock()).astimezone(UTC).replace(microsecond=0)
        entry: dict[str, object] = {
            "name": name,
            "hash": _digest(secret),
            "scopes": [s.spelling() for s in parsed],
            "created": moment.isoformat(),
        }
        if expires_in is not None:
            if expires_in <= timedelta(0):
                raise ConfigError("a token's lifetime must be positive")
            entry["expires"] = (moment + expires_in).isoformat()
        entries.append(entry)
        self._write(entries)
        return secret

    def revoke(self, name: str, *, now: datetime | None = None) -> TokenInfo:
        """Mark the token ``name`` revoked (kept, so that ``token list`` shows it); every server
        reading this file refuses it at its next use."""
        entries = [dict(e) for e in self._load()]
        for entry in entries:
            if str(entry.get("name")) != name:
                continue
            if entry.get("revoked"):
                raise ConfigError(f"the token {name!r} was already revoked at {entry['revoked']}")
            moment = (now or self.clock()).astimezone(UTC).replace(microsecond=0)
            entry["revoked"] = moment.isoformat()
            self._write(entries)
            return next(i for i in self.entries() if i.name == name)
        known = ", ".join(str(e.get("name")) for e in entries) or "none"
        raise ConfigError(f"no token named {name!r} in {self.path} (tokens: {known})",
                          where=Where(file=str(self.path)))

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
