"""No free text of the hospital leaves: every string element of the inputs carries a marker,
and no output of the adapter holds one (RESULTS.md: nothing that identifies a person at the
hospital leaves in a result).

The sample participants are loaded with a marker (``ZQX`` and a number) written into every
string the hospital chooses: names, telecom, address, every identifier value but the subject
code (an MRN, an accession number), ``code.text``, every ``coding.display``, ``Quantity.unit``,
and, added to every Observation, ``referenceRange.text``, ``interpretation``, ``method``,
``bodySite``, ``category.text``, a component, a note, an extension and a narrative. Every output
is then read through the way a user reads it: the REST endpoint (``$endpoint-results`` whole and
``_since``, reads and searches of every published type, the Bulk Data export files), the pushed
payload, the CSV table, the statisticians' dataset, SDTM in every format, the workspace commands
and the dashboard pages. A marker found in any of them is a leak.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.api_harness import Live, make_settings, make_tokens, sample_files, start

REPO = Path(__file__).resolve().parents[1]
MARK = "ZQX"
_MARKED = re.compile(rf"{MARK}\d+", re.IGNORECASE)
SUBJECT_SYSTEM = "https://hospital.example.org/fhir/sid/trial-subject"
LOCAL_CODES = "https://hospital.example.org/fhir/CodeSystem/local-lab"
V3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
#: String elements whose content the sender chooses freely (FHIR R4 datatypes: string, markdown).
_FREE_TEXT = {"text", "display", "unit", "family", "given", "prefix", "suffix", "line", "city",
              "district", "state", "postalCode", "valueString"}


class Marker:
    """Numbered markers; ``planted`` counts what was written."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self.planted = 0

    def __call__(self, what: str = "") -> str:
        self.planted += 1
        return f"{MARK}{next(self._numbers)}{what}"


def _mark_free_text(node: Any, mark: Marker, key: str = "") -> Any:
    if isinstance(node, dict):
        if key == "text" and "div" in node:  # a Narrative
            return {"status": "generated",
                    "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{mark()}</div>'}
        return {k: _mark_free_text(v, mark, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_mark_free_text(v, mark, key) for v in node]
    if isinstance(node, str) and key in _FREE_TEXT:
        return mark(f" {node}")
    return node


def _added_to_observation(mark: Marker) -> dict[str, Any]:
    """Every free-text place of an Observation the samples leave empty."""
    return {
        "text": {"status": "generated",
                 "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{mark()}</div>'},
        "extension": [{"url": "https://hospital.example.org/fhir/StructureDefinition/comment",
                       "valueString": mark()}],
        "interpretation": [{"coding": [{"system": V3, "code": "N", "display": mark()}],
                            "text": mark()}],
        "method": {"coding": [{"system": LOCAL_CODES, "code": mark(), "display": mark()}],
                   "text": mark()},
        "bodySite": {"text": mark()},
        "component": [{"code": {"coding": [{"system": LOCAL_CODES, "code": mark(),
                                            "display": mark()}], "text": mark()},
                       "valueString": mark()}],
        "note": [{"text": mark()}],
    }


def _marked_observation(resource: dict[str, Any], mark: Marker) -> dict[str, Any]:
    out = {**resource, **_added_to_observation(mark)}
    out["code"] = {**out["code"], "text": mark()}
    out["category"] = [{**c, "text": mark()} for c in out.get("category") or []]
    ranges = out.get("referenceRange") or [{}]
    out["referenceRange"] = [{**r, "text": mark(),
                              "type": {"text": mark()}, "appliesTo": [{"text": mark()}]}
                             for r in ranges]
    return out


def _identifier_values(bundles: list[dict[str, Any]]) -> set[str]:
    """Every identifier value of the inputs but the subject codes (which are published)."""
    found: set[str] = set()
    for bundle in bundles:
        for entry in bundle["entry"]:
            for ident in entry["resource"].get("identifier") or []:
                if ident.get("system") != SUBJECT_SYSTEM:
                    found.add(ident["value"])
    return found


def marked_inputs(folder: Path) -> tuple[list[Path], Marker]:
    """The sample Bundles with a marker in every string the hospital chooses."""
    mark = Marker()
    bundles = [json.loads(p.read_text(encoding="utf-8")) for p in sample_files()]
    renamed = {value: mark(f"-{value}") for value in sorted(_identifier_values(bundles),
                                                            key=len, reverse=True)}
    paths: list[Path] = []
    for source, bundle in zip(sample_files(), bundles, strict=True):
        for entry in bundle["entry"]:
            resource = _mark_free_text(entry["resource"], mark)
            if resource["resourceType"] == "Observation":
                resource = _marked_observation(resource, mark)
            entry["resource"] = resource
        text = json.dumps(bundle)
        for value, marked in renamed.items():  # in requests' URLs and ifNoneExist too
            text = text.replace(f'"{value}"', json.dumps(marked))
            text = text.replace(f"|{value}", f"|{marked}")
        path = folder / source.name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths, mark


@pytest.fixture(scope="module")
def marked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Live, Path]]:
    folder = tmp_path_factory.mktemp("privacy")
    inputs = folder / "inputs"
    inputs.mkdir()
    paths, mark = marked_inputs(inputs)
    assert mark.planted > 10_000
    settings = make_settings(folder)
    for live in start(settings, make_tokens(settings.tokens_file)):
        summary = live.pipeline.ingest_paths(paths)
        assert [e.line() for e in summary.errors] == []
        assert summary.by_type["Observation"].kept >= 800
        _refused_writes(live, paths[0], mark)
        yield live, folder


def _refused_writes(live: Live, first: Path, mark: Marker) -> None:
    """Writes the adapter refuses, their free text marked: what the audit and the queries
    keep of them (a participant's refused value, a refused call) must carry none of it."""
    bundle = json.loads(first.read_text(encoding="utf-8"))
    mrn = next(e["resource"]["identifier"][0] for e in bundle["entry"]
               if e["resource"]["resourceType"] == "Patient")
    value = next(e["resource"] for e in bundle["entry"]
                 if e["resource"]["resourceType"] == "Observation")
    value = {**value, "identifier": [{"system": LOCAL_CODES, "value": mark()}],
             "subject": {"reference": f"Patient?identifier={mrn['system']}|{mrn['value']}"},
             "valueQuantity": {"value": 1, "unit": mark(" Jafari")}}  # no UCUM code: refused
    headers = {"Authorization": f"Bearer {live.ehr}", "Content-Type": "application/fhir+json"}
    answer = httpx.post(f"{live.base}/Observation", json=value, headers=headers, timeout=60)
    assert answer.status_code == 422, answer.text[:300]
    assert MARK in answer.text  # the sender is told what it sent
    call = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0c0e0000-0000-4000-8000-000000000001",
         "resource": {**value, "subject": {"reference": f"Patient?identifier={mark()}|{mark()}"}},
         "request": {"method": "POST", "url": "Observation"}}]}
    answer = httpx.post(live.base, json=call, headers=headers, timeout=60)
    assert answer.status_code >= 400, answer.text[:300]


def _leaks(text: str) -> list[str]:
    return sorted(set(_MARKED.findall(text)))[:10]


def _get(live: Live, path: str, token: str | None = None, **params: str) -> httpx.Response:
    with live.client(token or live.research) as client:
        answer = client.get(path, params=params)
    assert answer.status_code == 200, (path, answer.text[:300])
    return answer


def test_the_inputs_carry_markers_where_the_hospital_writes(tmp_path: Path) -> None:
    paths, _ = marked_inputs(tmp_path)
    text = paths[0].read_text(encoding="utf-8")
    for element in ('"family": "ZQX', '"display": "ZQX', '"unit": "ZQX', '"note": [{"text": "ZQX',
                    '"bodySite": {"text": "ZQX', '"valueString": "ZQX', '"value": "ZQX'):
        assert element in text, element
    assert "|13200001" not in text and '"FSGS-01"' in text  # the MRN marked, the code not


def test_the_result_bundle_whole_and_since(marked: tuple[Live, Path]) -> None:
    live, _ = marked
    study = live.pipeline.study_id()
    whole = _get(live, f"/ResearchStudy/{study}/$endpoint-results").text
    assert '"derivedFrom"' in whole and "source-observation" in whole
    assert _leaks(whole) == []
    since = _get(live, f"/ResearchStudy/{study}/$endpoint-results",
                 _since="2000-01-01T00:00:00Z").text
    assert _leaks(since) == []


def test_reads_and_searches_of_every_published_type(marked: tuple[Live, Path]) -> None:
    live, _ = marked
    for kind in ("ResearchStudy", "PlanDefinition", "Patient", "ResearchSubject",
                 "Observation", "MeasureReport"):
        page = _get(live, f"/{kind}", _count="500").json()
        assert page["total"] > 0, kind
        assert _leaks(json.dumps(page)) == [], kind
        first = page["entry"][0]["resource"]
        assert _leaks(_get(live, f"/{kind}/{first['id']}").text) == [], kind
    patient = _get(live, "/Patient").json()["entry"][0]["resource"]["id"]
    answer = _get(live, "/Observation", subject=f"Patient/{patient}", _count="500",
                  _include="Observation:subject").text
    assert _leaks(answer) == []


def test_the_bulk_export_files(marked: tuple[Live, Path]) -> None:
    live, _ = marked
    headers = {"Authorization": f"Bearer {live.research}", "Accept": "application/fhir+json",
               "Prefer": "respond-async"}
    kick = httpx.get(f"{live.base}/$export", headers=headers)
    assert kick.status_code == 202, kick.text
    deadline = time.monotonic() + 120
    while (status := httpx.get(kick.headers["content-location"], headers=headers)
           ).status_code == 202:
        assert time.monotonic() < deadline
        time.sleep(float(status.headers["retry-after"]))
    assert status.status_code == 200, status.text
    files = status.json()["output"]
    assert {f["type"] for f in files} >= {"Patient", "Observation"}
    for item in files:
        body = httpx.get(item["url"], headers={**headers, "Accept": "application/fhir+ndjson"})
        assert body.status_code == 200
        assert _leaks(body.text) == [], item["type"]


def test_the_pushed_payload_and_the_csv(marked: tuple[Live, Path]) -> None:
    live, _ = marked
    assert _leaks(json.dumps(live.pipeline.push_bundle(None))) == []
    table = live.pipeline.results_csv()
    assert table.count("\n") > 100
    assert _leaks(table) == []


@pytest.mark.parametrize("fmt", ["dataset-json", "ndjson", "csv", "xpt"])
def test_sdtm_in_every_format(marked: tuple[Live, Path], fmt: str) -> None:
    live, folder = marked
    out = folder / f"sdtm-{fmt}"
    live.pipeline.export_sdtm(out, fmt)
    files = sorted(p for p in out.iterdir() if p.is_file())
    assert len(files) >= 7  # dm lb ex sv tv, define.xml, metadata.json
    for path in files:
        assert _leaks(path.read_bytes().decode("latin-1")) == [], path.name


def _cli(folder: Path, *args: str) -> str:
    env = {**os.environ, "FHIR_ADAPTER_DATABASE_URL": f"sqlite:///{folder / 'adapter.db'}",
           "FHIR_ADAPTER_TOKENS_FILE": str(folder / "tokens.json"), "COLUMNS": "100"}
    done = subprocess.run([sys.executable, "-c", "from fhir_adapter.cli import main; main()",
                           *args], env=env, cwd=folder, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, (args, done.stderr[-2000:])
    return done.stdout + done.stderr


@pytest.mark.parametrize("args", [
    ("results", "--format", "csv"), ("dataset",), ("participants",),
    ("participants", "--format", "json"), ("endpoints", "FSGS-01", "--format", "json"),
    ("endpoints", "FSGS-03"), ("visits", "--format", "json"), ("queries", "--format", "json"),
    ("outbox", "--all-states"),
])
def test_the_workspace_commands(marked: tuple[Live, Path], args: tuple[str, ...]) -> None:
    _, folder = marked
    assert _leaks(_cli(folder, *args)) == []


def test_the_dashboard_pages(marked: tuple[Live, Path]) -> None:
    live, _ = marked
    pages = ["/ui", "/ui?analyte=creatinine", "/ui/queries", "/ui/summary", "/ui/audit"]
    for subject in ("FSGS-01", "FSGS-03", "FSGS-05"):
        pages.append(f"/ui/participants/{subject}")
        page = _ui(live, f"/ui/participants/{subject}")
        pages += sorted(set(re.findall(rf'href="(/ui/participants/{subject}/[^"#?]+)"', page)))
    assert any("/values/" in p for p in pages) and any("/visits/" in p for p in pages)
    for path in pages:
        assert _leaks(_ui(live, path)) == [], path


def _ui(live: Live, path: str) -> str:
    base = live.base.removesuffix("/fhir")
    answer = httpx.get(f"{base}{path}", headers={"Authorization": f"Bearer {live.research}"})
    assert answer.status_code == 200, path
    return answer.text
