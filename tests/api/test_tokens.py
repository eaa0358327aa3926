"""The tokens file: hashed at rest, verified, scoped in SMART v2 spelling; the loopback rule."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from fhir_adapter.api import check_bind, is_loopback
from fhir_adapter.errors import ConfigError
from fhir_adapter.store.tokens import TokenFile, parse_scope


def test_token_is_stored_only_as_its_sha256(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    secret = TokenFile(path).create("hospital-a", ["system/*.cu"])
    text = path.read_text()
    assert secret not in text
    stored = json.loads(text)["tokens"][0]
    assert stored["hash"] == "sha256:" + hashlib.sha256(secret.encode()).hexdigest()
    assert stored["name"] == "hospital-a"
    assert stored["scopes"] == ["system/*.cu"]
    assert path.stat().st_mode & 0o077 == 0  # readable by its owner only


def test_verify_gives_the_name_and_scopes(tmp_path: Path) -> None:
    tokens = TokenFile(tmp_path / "tokens.json")
    ehr = tokens.create("hospital-a", ["system/*.cu"])
    research = tokens.create("research", ["system/*.rs"])
    fresh = TokenFile(tmp_path / "tokens.json")  # another process reading the same file
    principal = fresh.verify(ehr)
    assert principal is not None and principal.name == "hospital-a"
    assert principal.allows("Observation", "c") and principal.allows("Patient", "u")
    assert not principal.allows("Observation", "r") and not principal.allows("Observation", "s")
    reader = fresh.verify(research)
    assert reader is not None and reader.name == "research"
    assert reader.allows("Observation", "r") and not reader.allows("Observation", "c")
    assert fresh.verify(ehr + "x") is None
    assert fresh.verify("") is None


def test_a_token_created_later_is_seen_without_restart(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    reader = TokenFile(path)
    assert not reader.configured()
    secret = TokenFile(path).create("late", ["system/Observation.cu"])
    principal = reader.verify(secret)
    assert principal is not None and principal.allows("Observation", "c")
    assert not principal.allows("Patient", "c")


@pytest.mark.parametrize(
    ("text", "resource_type", "actions"),
    [
        ("system/*.cu", "*", {"c", "u"}),
        ("system/*.rs", "*", {"r", "s"}),
        ("system/Observation.cruds", "Observation", set("cruds")),
        ("system/*.read", "*", {"r", "s"}),  # SMART v1 spelling, read as v2
        ("system/*.write", "*", {"c", "u", "d"}),
    ],
)
def test_scopes(text: str, resource_type: str, actions: set[str]) -> None:
    scope = parse_scope(text)
    assert scope.resource_type == resource_type
    assert set(scope.actions) == actions


@pytest.mark.parametrize("text", ["patient/*.rs", "system/*.x", "*.cu", "system/observation.r", ""])
def test_bad_scopes_refused(text: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        TokenFile(tmp_path / "t.json").create("a", [text])
    assert not (tmp_path / "t.json").exists()


def test_names_are_unique_and_plain(tmp_path: Path) -> None:
    tokens = TokenFile(tmp_path / "t.json")
    tokens.create("hospital-a", ["system/*.cu"])
    with pytest.raises(ConfigError, match="already exists"):
        tokens.create("hospital-a", ["system/*.rs"])
    with pytest.raises(ConfigError):
        tokens.create("has space", ["system/*.rs"])
    with pytest.raises(ConfigError):
        tokens.create("no-scope", [])
    assert tokens.names() == ["hospital-a"]


def test_unreadable_tokens_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable"):
        TokenFile(path).verify("anything")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("10.0.0.5", False),
     ("example.org", False), ("", False)],
)
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_non_loopback_needs_a_token(tmp_path: Path) -> None:
    tokens = TokenFile(tmp_path / "t.json")
    check_bind("127.0.0.1", tokens)  # loopback: allowed without tokens
    with pytest.raises(ConfigError, match="refusing to listen on 0.0.0.0"):
        check_bind("0.0.0.0", tokens)
    tokens.create("hospital-a", ["system/*.cu"])
    check_bind("0.0.0.0", tokens)


def test_serve_refuses_a_public_address_without_tokens(tmp_path: Path) -> None:
    from fhir_adapter.api import serve
    from fhir_adapter.settings import Settings

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}",
                        tokens_file=tmp_path / "none.json")
    with pytest.raises(ConfigError, match="no token is configured"):
        serve(settings, host="0.0.0.0", port=1)  # refused before anything is bound or opened
    assert not (tmp_path / "a.db").exists()
