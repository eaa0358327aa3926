"""The README's first Quick start command, run as written in a fresh clone, shows the demo."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUBJECTS = [f"FSGS-0{n}" for n in range(1, 6)]


def quick_start_commands() -> list[str]:
    """The shell commands of the README's "Quick start" section, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_the_quick_start_has_exactly_two_commands() -> None:
    commands = quick_start_commands()
    assert len(commands) == 2
    assert all("\n" not in c for c in commands)
    assert "demo" in commands[0] and "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci  # CI runs the README's test command itself


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_first_command_in_a_fresh_clone_prints_the_five_participants(
    tmp_path: Path,
) -> None:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs a git checkout to clone from")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_ADAPTER_")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    done = subprocess.run(
        ["bash", "-c", quick_start_commands()[0]],
        cwd=clone, env=env, capture_output=True, text=True, timeout=850,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for subject in SUBJECTS:
        assert subject in done.stdout
    assert (clone / "results.json").is_file()
