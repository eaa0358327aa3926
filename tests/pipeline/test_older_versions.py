"""A version older than the one kept is answered and not kept: sending an old export again
cannot undo a correction (the sample corrections, re-sent originals)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fhir_adapter.pipeline import Pipeline
from fhir_adapter.pipeline.handlers import OLDER, older_than_kept
from fhir_adapter.settings import Settings

SAMPLES = Path(__file__).resolve().parents[2] / "sample_bundles"
ORIGINALS = [SAMPLES / "p1-FSGS-01.json", SAMPLES / "p2-FSGS-02.json"]
CORRECTIONS = SAMPLES / "zz-corrections.json"
LAB = "https://hospital.example.org/fhir/sid/lab-accession"


def _obs(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", **fields}


@pytest.mark.parametrize(("incoming", "kept", "older"), [
    # issued decides when both carry it
    (_obs(issued="2023-03-20T11:19:00+03:30"), _obs(issued="2023-03-29T13:19:00+03:30"), True),
    (_obs(issued="2023-03-29T13:19:00+03:30"), _obs(issued="2023-03-20T11:19:00+03:30"), False),
    # the same instant in two zones is not older
    (_obs(issued="2023-03-29T09:49:00Z"), _obs(issued="2023-03-29T13:19:00+03:30"), False),
    # meta.lastUpdated comes first: newer there, whatever issued says
    (_obs(meta={"lastUpdated": "2024-01-02T00:00:00Z"}, issued="2023-01-01T00:00:00Z"),
     _obs(meta={"lastUpdated": "2024-01-01T00:00:00Z"}, issued="2023-06-01T00:00:00Z"), False),
    (_obs(meta={"lastUpdated": "2023-12-31T00:00:00Z"}),
     _obs(meta={"lastUpdated": "2024-01-01T00:00:00Z"}), True),
    # only one side dated, or a time that is no instant: the later received is newer
    (_obs(), _obs(issued="2023-03-29T13:19:00+03:30"), False),
    (_obs(issued="2023-03-20T11:19:00+03:30"), _obs(), False),
    (_obs(issued="2023-03-20"), _obs(issued="2023-03-29T13:19:00+03:30"), False),
    (_obs(issued="not a time"), _obs(issued="2023-03-29T13:19:00+03:30"), False),
])
def test_which_version_is_older(incoming: dict[str, Any], kept: dict[str, Any],
                                older: bool) -> None:
    assert (older_than_kept(incoming, kept) is not None) is older


@pytest.fixture
def pipeline(store_url: str) -> Iterator[Pipeline]:
    p = Pipeline.from_settings(Settings(database_url=store_url))
    yield p
    p.store.close()


def _creatinine_w2(p: Pipeline) -> tuple[Decimal, str]:
    """FSGS-01's corrected creatinine (accession L0001-0039: 0.54 mg/dL, corrected to 0.47)."""
    with p.store.read() as unit:
        found = unit.find([f"ident|Observation|{LAB}|L0001-0039"])
    assert found is not None
    return Decimal(str(found.current["valueQuantity"]["value"])), found.current["status"]


def test_the_originals_sent_again_leave_the_corrections_and_results_alone(
        pipeline: Pipeline) -> None:
    pipeline.ingest_paths([*ORIGINALS, CORRECTIONS])
    assert _creatinine_w2(pipeline) == (Decimal("0.47"), "amended")
    with pipeline.store.read() as unit:
        results = {r.key: (r.version, r.content_hash) for r in unit.results()}
    counts = pipeline.store.row_counts()

    again = pipeline.ingest_paths(ORIGINALS)

    assert _creatinine_w2(pipeline) == (Decimal("0.47"), "amended")
    assert again.not_kept("Observation") == {OLDER: 2}  # the amended and the withdrawn one
    assert again.errors == []
    with pipeline.store.read() as unit:
        assert {r.key: (r.version, r.content_hash) for r in unit.results()} == results
    after = pipeline.store.row_counts()
    for table in ("resource_version", "measurement", "endpoint_result", "outbox"):
        assert after[table] == counts[table], table


def test_an_older_version_is_answered_with_why(pipeline: Pipeline) -> None:
    pipeline.ingest_paths([*ORIGINALS, CORRECTIONS])
    original = next(e["resource"] for e in json.loads(ORIGINALS[0].read_text())["entry"]
                    if e["resource"].get("identifier", [{}])[0].get("value") == "L0001-0039")
    original["subject"] = {"reference": "Patient?identifier="
                           "https://hospital.example.org/fhir/sid/mrn|13200001"}
    entry = pipeline.process_resource(original, sender="h1", method="PUT",
                                      conditional=f"identifier={LAB}|L0001-0039")
    assert (entry.state, entry.status, entry.reason) == ("not-kept", 200, OLDER)
    text = json.dumps(entry.outcome)
    assert "issued 2023-03-20T11:19:00+03:30 is before 2023-03-29T13:19:00+03:30" in text
    assert _creatinine_w2(pipeline) == (Decimal("0.47"), "amended")
