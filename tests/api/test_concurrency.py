"""Twenty EHR pushes at once, overlapping, through several uvicorn workers: one copy of each."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from fhir_adapter.pipeline import Pipeline
from tests.api.api_harness import FHIR_JSON, make_settings, make_tokens, serve_workers
from tests.builders import HOSPITAL, hospital_patient, lab_creatinine, linked_bundle

PUSHES = 20
POOL = 10  # distinct Observations; each push carries 5 of them, so pushes overlap


def _bundle(push: int) -> dict[str, object]:
    observations = []
    for k in range(5):
        n = (push + k) % POOL
        observations.append(
            lab_creatinine(
                "{ref:0}", 0.4 + n / 10, f"2024-06-{n + 1:02d}T08:00:00Z", ident=f"LAB-{n}"
            )
        )
    return linked_bundle(hospital_patient("MRN-C"), *observations)  # fresh urn:uuids in every push


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'adapter.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_concurrent_overlapping_pushes_keep_one_copy(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url)
    tokens = make_tokens(settings.tokens_file)
    pipeline = Pipeline.from_settings(settings)  # creates the schema before the workers start
    pipeline.enroll(HOSPITAL, "MRN-C", "FSGS-100")
    senders = [tokens["ehr"], tokens["other_ehr"]]

    with serve_workers(settings, workers=2, cwd=tmp_path) as base:
        def push(i: int) -> httpx.Response:
            return httpx.post(base, json=_bundle(i), timeout=300, headers={
                "Content-Type": FHIR_JSON, "Authorization": f"Bearer {senders[i % 2]}"})

        with ThreadPoolExecutor(max_workers=PUSHES) as pool:
            responses = list(pool.map(push, range(PUSHES)))

    assert [r.status_code for r in responses] == [200] * PUSHES, [
        r.text[:300] for r in responses if r.status_code != 200]
    not_kept = [e["response"] for r in responses for e in r.json()["entry"]
                if "location" not in e["response"]]
    assert not_kept == []  # a race must not make an enrolled patient's data look unenrolled
    with pipeline.store.read() as unit:
        assert unit.count_by_type() == {"Patient": 1, "Observation": POOL}
    created = sum(
        e["response"]["status"] == "201 Created"
        for r in responses for e in r.json()["entry"]
    )
    assert created == 1 + POOL  # each resource was created once, by whichever push came first
    locations = {
        e["response"]["location"].split("/_history")[0]
        for r in responses for e in r.json()["entry"]
    }
    assert len(locations) == 1 + POOL
