"""The layer rule (import-linter), ruff and mypy over the package: they must stay clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    exe = BIN / name
    if not exe.exists():
        pytest.fail(f"{name} is not installed beside {sys.executable} (pip install -e '.[test]')")
    return subprocess.run([str(exe), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600, check=False)


def test_import_contracts_hold() -> None:
    result = _tool("lint-imports", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def test_ruff_is_clean() -> None:
    result = _tool("ruff", "check", "fhir_adapter", "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = _tool("mypy", "fhir_adapter")
    assert result.returncode == 0, result.stdout + result.stderr


# -- no cycle between the modules of a package (grimp, which import-linter uses) ----------------
def package_cycles(graph: Any) -> dict[str, list[list[str]]]:
    """Per package, the cycles among its direct children (a child stands for itself and all
    it contains): ``a`` imports ``b`` and ``b``, directly or through siblings, imports ``a``."""
    found: dict[str, list[list[str]]] = {}
    for package in sorted(m for m in graph.modules if graph.find_children(m)):
        children = sorted(graph.find_children(package))
        edges = {a: [b for b in children if b != a and graph.direct_import_exists(
            importer=a, imported=b, as_packages=True)] for a in children}
        cycles = [path for a in children for path in _paths_back(edges, a)]
        if cycles:
            found[package] = cycles
    return found


def _paths_back(edges: dict[str, list[str]], start: str) -> list[list[str]]:
    """One path from ``start`` back to itself, when there is one."""
    stack = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for following in edges[node]:
            if following == start:
                return [[*path, start]]
            if following not in seen:
                seen.add(following)
                stack.append((following, [*path, following]))
    return []


def test_no_cycle_between_the_modules_of_a_package() -> None:
    import grimp

    graph = grimp.build_graph("fhir_adapter")
    assert package_cycles(graph) == {}


def test_the_cycle_check_finds_a_cycle() -> None:
    import grimp

    graph = grimp.ImportGraph()
    for name in ("app", "app.a", "app.b", "app.c", "app.c.inner"):
        graph.add_module(name)
    graph.add_import(importer="app.a", imported="app.b")
    graph.add_import(importer="app.b", imported="app.c.inner")  # into a subpackage
    assert package_cycles(graph) == {}
    graph.add_import(importer="app.c.inner", imported="app.a")
    assert package_cycles(graph)["app"][0] == ["app.a", "app.b", "app.c", "app.a"]
