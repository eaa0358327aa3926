"""A bounded fuzz of the ways in (Hypothesis, fixed seed): valid writes with one element made
hostile, over the REST endpoint and through ``ingest``. No answer is a 500, the server logs no
traceback, and a refused request stores nothing."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.api.api_harness import FHIR_JSON, Live, make_settings, make_tokens, start
from tests.builders import hospital_patient, lab_creatinine, linked_bundle

pytestmark = pytest.mark.slow

CASES = 150  # per way in: a few hundred in all, bounded for CI
SEED = 20
STUDY = {"identifier": {"system": "https://clinicaltrials.gov", "value": "NCT02382874"}}

#: values a hostile or broken sender puts where another was expected
HOSTILE: list[Any] = [
    None, True, 0, -1, 2**64, -(2**70), 1e300, -1e-300, 3.4028235e38, 1.7976931348623157e308,
    0.1 + 0.2, "", " ", "\u0000", "a\u0000b", "x" * 70_000, "\ud7ff\ue000\U0010ffff", "<b>",
    "'; DROP TABLE resource; --", "../../etc/passwd", "urn:uuid:not-a-uuid", "Patient/../x",
    "Patient?identifier=", "2024-02-30", "2024-05-01T25:00:00Z", "NaN", "Infinity", "1e999",
    [], [None], {}, {"a": {"b": {"c": {}}}}, [[[[[]]]]], {"resourceType": "Patient"},
    "FOO", "a" * 65,
]


class _Tracebacks(logging.Handler):
    """Every log record that carries a traceback (or is an error of the server)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Live, _Tracebacks]]:
    tmp: Path = tmp_path_factory.mktemp("fuzz-writes")
    config = make_settings(tmp)
    handler = _Tracebacks()
    logging.getLogger().addHandler(handler)
    try:
        for live in start(config, make_tokens(config.tokens_file)):
            yield live, handler
    finally:
        logging.getLogger().removeHandler(handler)


def _base_bundle(kind: str) -> dict[str, Any]:
    subject = {"resourceType": "ResearchSubject", "status": "on-study", "study": STUDY,
               "identifier": [{"system": "https://hospital.example.org/subject",
                               "value": "S-FZ"}],
               "individual": {"reference": "{ref:0}"}}
    bundle = linked_bundle(hospital_patient("FZ-1"), subject,
                           lab_creatinine("{ref:0}", 0.6, "2024-05-01T08:00:00Z", ident="FZ-L1"),
                           kind=kind)
    bundle["entry"][1]["resource"]["individual"]["reference"] = bundle["entry"][0]["fullUrl"]
    return bundle


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to an element of ``node`` (keys and list positions)."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


def _mutated(document: dict[str, Any], choice: int, action: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(document)
    paths = _paths(out)
    path = paths[choice % len(paths)]
    parent: Any = out
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete" and isinstance(parent, dict):
        del parent[last]
    elif action == "add" and isinstance(parent, dict):
        parent[f"{last}Extra"] = value
    else:
        parent[last] = copy.deepcopy(value)
    return out


mutations = st.tuples(st.integers(min_value=0, max_value=10_000),
                      st.sampled_from(["replace", "replace", "delete", "add"]),
                      st.sampled_from(HOSTILE) | st.text(max_size=40) |
                      st.floats(allow_nan=False, allow_infinity=False) | st.integers())


def _rows(live: Live) -> dict[str, int]:
    counts = live.pipeline.store.row_counts()
    for name in ("audit", "adapter_secret"):
        counts.pop(name, None)
    return counts


def _check_no_tracebacks(handler: _Tracebacks) -> None:
    bad = [r for r in handler.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad][:3]


def test_rest_writes(fuzzed: tuple[Live, _Tracebacks]) -> None:
    live, handler = fuzzed
    seen: list[int] = []

    @seed(SEED)
    @given(mutation=mutations, kind=st.sampled_from(["transaction", "batch", "Observation"]))
    @settings(max_examples=CASES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def no_500(mutation: tuple[int, str, Any], kind: str) -> None:
        if kind == "Observation":
            document: dict[str, Any] = lab_creatinine(
                "Patient?identifier=urn:oid:1.2.3.4.5.6|FZ-1", 0.7, "2024-05-02T08:00:00Z",
                ident="FZ-L2")
            path = "Observation"
        else:
            document, path = _base_bundle(kind), ""
        body = _mutated(document, *mutation)
        try:
            content = json.dumps(body, allow_nan=False).encode()
        except ValueError:
            return
        before = _rows(live)
        with httpx.Client(base_url=live.base, timeout=120, headers={
                "Authorization": f"Bearer {live.ehr}", "Content-Type": FHIR_JSON}) as client:
            response = client.post(path, content=content)
        seen.append(response.status_code)
        assert response.status_code < 500, (mutation, response.text[:500])
        answer = response.json()
        if response.status_code >= 400:
            assert answer["resourceType"] == "OperationOutcome"
            assert _rows(live) == before, mutation  # refused: nothing stored
        _check_no_tracebacks(handler)

    no_500()
    assert len(seen) >= CASES * 0.9
    assert any(s >= 400 for s in seen) and any(s < 300 for s in seen)


def test_ingest_lines(fuzzed: tuple[Live, _Tracebacks], tmp_path_factory: pytest.TempPathFactory
                      ) -> None:
    live, handler = fuzzed
    folder = tmp_path_factory.mktemp("fuzz-lines")
    refused = []

    @seed(SEED)
    @given(mutation=mutations)
    @settings(max_examples=CASES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def no_crash(mutation: tuple[int, str, Any]) -> None:
        line = _mutated(lab_creatinine("Patient?identifier=urn:oid:1.2.3.4.5.6|FZ-1", 0.8,
                                       "2024-05-03T08:00:00Z", ident="FZ-L3"), *mutation)
        try:
            text = json.dumps(line, allow_nan=False)
        except ValueError:
            return
        path = folder / "line.ndjson"
        path.write_text(text + "\n", encoding="utf-8")
        before = _rows(live)
        summary = live.pipeline.ingest_paths([path], sender="fuzz")  # raises on a crash
        if summary.errors:
            refused.append(mutation)
            assert _rows(live) == before, (mutation, summary.errors[0].line())
            assert all(e.where.line == 1 for e in summary.errors)
        _check_no_tracebacks(handler)

    no_crash()
    assert refused
