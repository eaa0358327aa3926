"""Static tokens that expire and can be revoked: refused at once by a running server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from fhir_adapter.errors import AuthError, ConfigError
from fhir_adapter.store.tokens import TokenFile, parse_duration
from tests.api.api_harness import Live, make_settings, make_tokens, start

EXE = Path(sys.executable).with_name("fhir-adapter")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    settings = make_settings(tmp_path)
    yield from start(settings, make_tokens(settings.tokens_file))


@pytest.mark.parametrize(("text", "seconds"), [("3600", 3600), ("90m", 5400), ("12h", 43200),
                                               ("30d", 2592000), ("2w", 1209600), (" 5s ", 5)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0", "-5", "1y", "1.5h", "h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text)


def test_a_token_is_refused_once_it_expires(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    start_at = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    with time_machine.travel(start_at, tick=False) as clock:
        secret = TokenFile(path).create("trial-run", ["system/*.rs"],
                                        expires_in=timedelta(hours=2))
        reader = TokenFile(path)
        stored = json.loads(path.read_text())["tokens"][0]
        assert stored["created"] == "2026-03-01T09:00:00+00:00"
        assert stored["expires"] == "2026-03-01T11:00:00+00:00"
        clock.shift(timedelta(hours=1, minutes=59, seconds=59))
        principal = reader.verify(secret)
        assert principal is not None
        assert principal.expires == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
        clock.shift(timedelta(seconds=1))
        with pytest.raises(AuthError, match="expired at 2026-03-01T11:00:00"):
            reader.verify(secret)


def test_a_revoked_token_is_refused_at_once_by_a_running_server(live: Live) -> None:
    with live.client(live.research) as client:
        assert client.get("/ResearchStudy").status_code == 200
        TokenFile(live.settings.tokens_file).revoke("research-server")  # another process
        answer = client.get("/ResearchStudy")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    text = answer.json()["issue"][0]["diagnostics"]
    assert "'research-server' was revoked at" in text
    with live.client(live.ehr) as client:  # the others are untouched
        assert client.get("/metadata").status_code == 200
        assert client.post("/Patient/$validate", json={"resourceType": "Patient"}).status_code \
            == 200


def test_an_expired_token_is_refused_by_a_running_server(live: Live) -> None:
    tokens = TokenFile(live.settings.tokens_file)
    old = tokens.create("yesterday", ["system/*.rs"], expires_in=timedelta(hours=1),
                        now=datetime.now(UTC) - timedelta(hours=2))
    fresh = tokens.create("today", ["system/*.rs"], expires_in=timedelta(hours=1))
    with live.client(old) as client:
        answer = client.get("/ResearchStudy")
    assert answer.status_code == 401
    assert "'yesterday' expired at" in answer.json()["issue"][0]["diagnostics"]
    with live.client(fresh) as client:
        assert client.get("/ResearchStudy").status_code == 200


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_ADAPTER_")}
    env["FHIR_ADAPTER_TOKENS_FILE"] = str(cwd / "tokens.json")
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120, check=False)


def test_token_commands(tmp_path: Path) -> None:
    made = _cli("token", "create", "--name", "cohort-pull", "--scope", "system/*.rs",
                "--expires-in", "30d", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.splitlines()[-1]
    assert secret.startswith("fa_") and "valid until" in made.stdout
    assert _cli("token", "create", "--name", "ehr", "--scope", "system/*.cu",
                cwd=tmp_path).returncode == 0
    listed = _cli("token", "list", cwd=tmp_path)
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SCOPES", "CREATED", "EXPIRES", "STATE"]
    cohort, ehr = lines[1].split(), lines[2].split()
    created = datetime.fromisoformat(cohort[2].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(cohort[3].replace("Z", "+00:00"))
    assert cohort[0:2] == ["cohort-pull", "system/*.rs"] and cohort[4] == "active"
    assert expires - created == timedelta(days=30)
    assert ehr[0:2] == ["ehr", "system/*.cu"] and ehr[3] == "-" and ehr[4] == "active"
    assert secret not in listed.stdout

    revoked = _cli("token", "revoke", "cohort-pull", cwd=tmp_path)
    assert revoked.returncode == 0 and "revoked at" in revoked.stdout
    after = _cli("token", "list", cwd=tmp_path).stdout.splitlines()[1].split()
    assert after[4] == "revoked"
    with pytest.raises(AuthError, match="revoked"):
        TokenFile(tmp_path / "tokens.json").verify(secret)

    for args, text in [(("token", "revoke", "nobody"), "no token named 'nobody'"),
                       (("token", "revoke", "cohort-pull"), "already revoked"),
                       (("token", "create", "--name", "x", "--scope", "system/*.rs",
                         "--expires-in", "soon"), "duration 'soon'")]:
        result = _cli(*args, cwd=tmp_path)
        assert result.returncode == 2, result
        assert "Traceback" not in result.stderr
        assert text in result.stderr
