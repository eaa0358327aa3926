"""Golden output: the result Bundle and CSV of the sample bundles, compared parsed.

Any change of what the adapter publishes shows here (and in review, as a diff of the golden
files). Ids made from the pseudonym key and the moments of the run are normalised; everything
else must be equal. ``FHIR_ADAPTER_WRITE_GOLDEN=1 pytest tests/test_golden.py`` writes the files
anew after a change made on purpose.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "data" / "golden"
WRITE = os.environ.get("FHIR_ADAPTER_WRITE_GOLDEN") == "1"
KEY = "golden-pseudonym-key-of-the-tests"

_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
#: Elements whose value is the moment of the run, not of the data.
_RUN_TIMES = {"lastUpdated", "timestamp", "recorded", "date", "issued"}


def _cli(*args: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", "from fhir_adapter.cli import main; main()", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    work = tmp_path_factory.mktemp("golden")
    env = {**os.environ, "FHIR_ADAPTER_DATABASE_URL": f"sqlite:///{work / 'golden.db'}",
           "FHIR_ADAPTER_PSEUDONYM_KEY": KEY, "FHIR_ADAPTER_TOKENS_FILE": str(work / "t.json")}
    _cli("ingest", str(REPO / "sample_bundles"), env=env, cwd=work)
    _cli("results", "--out", str(work / "results.json"), env=env, cwd=work)
    _cli("results", "--format", "csv", "--out", str(work / "results.csv"), env=env, cwd=work)
    bundle = json.loads((work / "results.json").read_text(encoding="utf-8"))
    return bundle, (work / "results.csv").read_text(encoding="utf-8")


def _scrub(node: Any, key: str = "") -> Any:
    """A resource without its ids, references and run times: what names it across runs."""
    if isinstance(node, dict):
        return {k: _scrub(v, k) for k, v in node.items()
                if k not in ("id", "reference", "fullUrl", "versionId")}
    if isinstance(node, list):
        return [_scrub(v, key) for v in node]
    if isinstance(node, str) and key in _RUN_TIMES and _INSTANT.match(node):
        return "<run time>"
    return node


def id_names(bundle: dict[str, Any]) -> dict[str, str]:
    """Each entry's id -> a name made from its content, the same in every run."""
    ids: dict[str, str] = {}
    for entry in bundle.get("entry", []):
        resource = dict(entry["resource"])
        # a source Observation's identifier value is its (per-load) id
        resource["identifier"] = [i for i in resource.get("identifier", [])
                                  if i.get("value") != resource["id"]]
        digest = hashlib.sha256(
            json.dumps(_scrub(resource), sort_keys=True).encode()).hexdigest()[:16]
        name = f"{resource['resourceType']}-{digest}"
        while name in ids.values():
            name += "+"
        ids[resource["id"]] = name
    return ids


def normalise_bundle(bundle: dict[str, Any]) -> dict[str, Any]:
    """Ids and references renamed by ``id_names``, run times replaced, entries sorted by name."""
    ids = id_names(bundle)

    def rewrite(node: Any, key: str = "") -> Any:
        if isinstance(node, dict):
            return {k: rewrite(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [rewrite(v, key) for v in node]
        if isinstance(node, str):
            if key in _RUN_TIMES and _INSTANT.match(node):
                return "<run time>"
            if key == "versionId":
                return "<version>"
            if key in ("id", "value") and node in ids:
                return ids[node]
            if key in ("reference", "fullUrl"):
                head, _, tail = node.rpartition("/")
                if tail in ids:
                    return f"{head}/{ids[tail]}" if head else ids[tail]
                if key == "reference" and not tail.startswith(("http", "urn")) and "?" not in node:
                    return f"{head}/<resolves to no entry>"
        return node

    shaped = rewrite(dict(bundle))
    shaped.pop("id", None)
    shaped["entry"] = sorted(shaped.get("entry", []), key=lambda e: e["resource"]["id"])
    return shaped


def normalise_csv(text: str, bundle: dict[str, Any]) -> str:
    """The CSV with source ids renamed as the Bundle's are, rows sorted."""
    ids = id_names(bundle)
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    column = header.index("source_ids")
    rows = []
    for row in reader:
        # display-only rows name sources that are not published: their ids are only counted
        row[column] = ";".join(sorted(ids.get(i, "<unpublished>") for i in row[column].split(";")
                                      if i))
        rows.append(row)
    rows.sort()
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    return buffer.getvalue()


def test_result_bundle_equals_golden(published: tuple[dict[str, Any], str]) -> None:
    got = normalise_bundle(published[0])
    path = GOLDEN / "results.json"
    if WRITE:
        path.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    want = json.loads(path.read_text(encoding="utf-8"))
    assert len(got["entry"]) == len(want["entry"])
    for mine, golden in zip(got["entry"], want["entry"], strict=True):
        assert mine == golden
    assert got == want


def test_result_csv_equals_golden(published: tuple[dict[str, Any], str]) -> None:
    got = normalise_csv(published[1], published[0])
    path = GOLDEN / "results.csv"
    if WRITE:
        path.write_text(got, encoding="utf-8")
    want = path.read_text(encoding="utf-8")
    assert got.splitlines() == want.splitlines()
