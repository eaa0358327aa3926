"""One validation for every way in: the negative corpus through REST writes, ``ingest``,
``$validate`` and ``fhir-adapter validate`` gets the same verdict and the same errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from fhir_adapter.pipeline import Pipeline
from tests.api.api_harness import Live

DATA = Path(__file__).resolve().parents[1] / "data" / "validation"
CASES: dict[str, dict[str, Any]] = json.loads((DATA / "cases.json").read_text("utf-8"))
FILES = sorted(DATA / "negative" / case["file"] for case in CASES.values())
_ENTRY = re.compile(r"^entry \d+: ")
Error = tuple[str, str]  # (FHIRPath, sentence with its rule and profile)


def _errors(outcome: dict[str, Any]) -> set[Error]:
    """The errors of an OperationOutcome, their sentences without an "entry N: " prefix."""
    assert outcome["resourceType"] == "OperationOutcome"
    return {
        ((issue.get("expression") or [""])[0], _ENTRY.sub("", issue.get("diagnostics", "")))
        for issue in outcome["issue"]
        if issue["severity"] in ("error", "fatal")
    }


def _from_the_command_line(live: Live) -> dict[str, set[Error]]:
    env = {**os.environ, "FHIR_ADAPTER_DATABASE_URL": live.settings.db_url()}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("fhir-adapter")), "validate", "--format", "json",
         *map(str, FILES)],
        capture_output=True, text=True, env=env, check=False, timeout=600)
    assert done.returncode == 1, done.stderr
    bundle = json.loads(done.stdout)  # nothing else on standard output
    return {Path(e["fullUrl"].removeprefix("file://")).name: _errors(e["resource"])
            for e in bundle["entry"]}


def _ingested(live: Live, tmp: Path) -> dict[str, set[Error]]:
    """What ``fhir-adapter ingest FOLDER`` refuses, file by file (its issues, as the server
    roots them: ``Bundle.entry[i].resource...`` for an entry of a Bundle)."""
    pipeline = Pipeline.from_settings(live.settings.model_copy(
        update={"database_url": f"sqlite:///{tmp / 'ingest.db'}"}))
    summary = pipeline.ingest_paths([DATA / "negative"])
    found: dict[str, set[Error]] = {}
    for error in summary.errors:
        name = Path(str(error.where.file)).name
        for issue in error.issues:
            if issue.severity not in ("error", "fatal"):
                continue
            expression = issue.expression or ""
            if error.where.entry is not None and not expression.startswith("Bundle"):
                head, dot, rest = expression.partition(".")
                expression = f"Bundle.entry[{error.where.entry}].resource{dot}{rest}"
            found.setdefault(name, set()).add((expression, issue.described()))
    assert pipeline.store.row_counts()["resource"] == 0
    return found


def test_every_way_in_gives_the_same_verdict_and_errors(live: Live, tmp_path: Path) -> None:
    command_line = _from_the_command_line(live)
    ingested = _ingested(live, tmp_path)
    with live.client(live.ehr) as client:
        for path in FILES:
            document = json.loads(path.read_text("utf-8"))
            kind = document["resourceType"]
            checked = client.post(f"{live.base}/{kind}/$validate", json=document)
            assert checked.status_code == 200, path.name
            expected = _errors(checked.json())
            assert expected, f"{path.name}: $validate found no error"
            assert command_line[path.name] == expected, path.name
            assert ingested[path.name] == expected, path.name
            if kind == "Bundle":
                written = client.post(live.base, json=document)
            else:
                written = client.post(f"{live.base}/{kind}", json=document)
            assert written.status_code in (400, 422), (path.name, written.text)
            if kind == "Bundle" and document.get("type") not in ("transaction", "batch"):
                continue  # the endpoint takes no other type: refused as such, before validation
            assert _errors(written.json()) == expected, path.name
    assert live.pipeline.store.row_counts()["resource"] == 0
