"""The published result Bundle of the sample bundles keeps its own contract: every reference
resolves inside it, and ``fhir-adapter validate`` passes it (as the demo writes it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from fhir_adapter.cli import main; main()", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=600,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    work = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "FHIR_ADAPTER_TOKENS_FILE": str(work / "t.json")}
    done = _cli("demo", env=env, cwd=work)
    assert done.returncode == 0, done.stderr
    return work / "results.json", env


def _references(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield path, value
            else:
                yield from _references(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _references(value, f"{path}[{i}]")


def test_every_reference_of_the_result_bundle_resolves_in_it(
        demo: tuple[Path, dict[str, str]]) -> None:
    bundle = json.loads(demo[0].read_text(encoding="utf-8"))
    held = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
    dangling = []
    derived_from_sources = 0
    for entry in bundle["entry"]:
        resource = entry["resource"]
        contained = {f"#{c['id']}" for c in resource.get("contained", [])}
        for path, reference in _references(resource, resource["resourceType"]):
            if reference not in held and reference not in contained:
                dangling.append((resource["id"], path, reference))
        code = resource.get("code", {}).get("coding", [{}])[0].get("code", "")
        if code.startswith("max-ctcae-grade-"):
            for derived in resource.get("derivedFrom", []):
                target = next(e["resource"] for e in bundle["entry"]
                              if f"Observation/{e['resource']['id']}" == derived["reference"])
                # a maximum reached outside every window: the source Observation itself
                derived_from_sources += target["identifier"][0]["system"].endswith(
                    "source-observation")
    assert dangling == []
    assert derived_from_sources > 0  # the samples have grades reached outside every window


def test_validate_passes_the_demo_result_bundle(demo: tuple[Path, dict[str, str]]) -> None:
    path, env = demo
    done = _cli("validate", str(path), env=env, cwd=path.parent)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "valid (0 errors" in done.stdout
