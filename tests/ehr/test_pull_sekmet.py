"""``pull`` against sekmet-fhir: Bulk $export with SMART Backend Services, real HTTP, real JWTs.

Expected results come from the sample Bundles loaded by ``ingest`` into a second database (the
adapter's own answer to the same data by another way in), normalised as tests/test_golden.py
normalises (ids named by content, run times replaced).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fhir_adapter.outbound.bulk_client import BulkClient, ExportRequest
from fhir_adapter.outbound.smart import SmartAuth
from fhir_adapter.pipeline import Pipeline
from fhir_adapter.pipeline.pull import DEFAULT_TYPES, pull
from fhir_adapter.settings import Settings
from tests.test_golden import KEY, normalise_bundle

from .conftest import CLIENT_ID, CORRECTIONS, PARTICIPANT_FILES, SAMPLES, Ehr

MRN_SYSTEM = "https://hospital.example.org/fhir/sid/mrn"


def _pipeline(tmp_path: Path, name: str) -> Pipeline:
    return Pipeline.from_settings(Settings(database_url=f"sqlite:///{tmp_path / name}",
                                           bulk_workers=0, pseudonym_key=KEY))


#: sekmet asks the ``d`` permission of the DELETE of a polling URL
SCOPE = "system/*.rsd"


def _client(ehr: Ehr) -> BulkClient:
    return BulkClient(ehr.base, SmartAuth(ehr.base, CLIENT_ID, ehr.key_file, scope=SCOPE))


def _same_results(got: Pipeline, want: Pipeline) -> None:
    mine = normalise_bundle(got.result_bundle())["entry"]
    theirs = normalise_bundle(want.result_bundle())["entry"]
    assert len(mine) == len(theirs)
    assert mine == theirs


def _new_observation() -> dict[str, Any]:
    """One more creatinine of FSGS-02 (an accession the samples do not have), drawn two hours
    after the last one (so no two values share a moment)."""
    bundle = json.loads((SAMPLES / "p2-FSGS-02.json").read_text(encoding="utf-8"))
    patient = bundle["entry"][0]["resource"]
    mrn = next(i["value"] for i in patient["identifier"] if i["system"] == MRN_SYSTEM)
    crea = next(e["resource"] for e in reversed(bundle["entry"])
                if e["resource"]["resourceType"] == "Observation"
                and e["resource"]["code"]["coding"][0]["code"] == "2160-0")
    return {**crea, "identifier": [{"system": crea["identifier"][0]["system"],
                                    "value": "NEW-0001"}],
            "subject": {"reference": f"Patient?identifier={MRN_SYSTEM}|{mrn}"},
            "effectiveDateTime": _later(crea["effectiveDateTime"]),
            "issued": _later(crea["issued"]),
            "valueQuantity": {**crea["valueQuantity"], "value": 0.61}}


def _later(moment: str, hours: int = 2) -> str:
    return (datetime.fromisoformat(moment) + timedelta(hours=hours)).isoformat()


def test_pull_equals_ingest_then_since_auto_brings_only_what_changed(
        tmp_path: Path, ehr: Ehr) -> None:
    ehr.seed(PARTICIPANT_FILES)
    pipeline = _pipeline(tmp_path, "pulled.db")
    client = _client(ehr)
    request = ExportRequest(DEFAULT_TYPES)
    first = pull(pipeline, client, request, workdir=tmp_path / "pull")
    assert [e.line() for e in first.summary.errors] == [] and first.server_errors == []
    assert first.summary.by_type["Observation"].kept == 823  # 172+167+159+158+167 in the files
    assert first.summary.by_type["ResearchSubject"].kept == 5
    assert first.delete_status == 202  # the polling URL deleted after the download
    assert "ResearchSubject" in first.enrollment
    bundles = _pipeline(tmp_path, "ingested.db")
    bundles.ingest_paths(PARTICIPANT_FILES)
    _same_results(pipeline, bundles)

    again = pull(pipeline, client, request, workdir=tmp_path / "pull", since_auto=True)
    assert again.since == first.transaction_time
    assert again.summary.total("read") == 0  # nothing changed on the EHR: nothing transferred

    ehr.seed([CORRECTIONS])
    new = _new_observation()
    ehr.post("Observation", new)
    third = pull(pipeline, client, request, workdir=tmp_path / "pull", since_auto=True)
    assert third.since == again.transaction_time
    observations = third.summary.by_type["Observation"]
    assert (observations.read, observations.kept, observations.replaced) == (3, 1, 2)
    bundles.ingest_paths([CORRECTIONS])
    bundles.process_resource(new, sender="cli")
    _same_results(pipeline, bundles)
    assert client.auth is not None and client.auth.tokens_fetched == 1  # one token, cached
