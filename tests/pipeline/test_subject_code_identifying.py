"""A subject code that is one of the Patient's own identifier values (an MRN used as the
subject code) is refused wherever the two meet: a ResearchSubject naming its Patient, a Patient
arriving for its participant, ``enroll`` and a roster. The subject code is what every result,
export and push carries out of the hospital; nothing is stored by the refused write."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fhir_adapter.errors import InvalidResource
from fhir_adapter.pipeline import Pipeline
from fhir_adapter.settings import Settings
from tests.builders import (
    MRN,
    PATIENT_URL,
    creatinine,
    entry,
    infusion,
    patient,
    research_subject,
    transaction,
)

SUBJECT_URL = "urn:uuid:5f0e6a52-1f53-4c44-9d4a-0c1b3c2d4e02"


@pytest.fixture
def pipeline(store_url: str) -> Iterator[Pipeline]:
    p = Pipeline.from_settings(Settings(database_url=store_url))
    yield p
    p.store.close()


def _participants(p: Pipeline) -> list[str]:
    return [r.participant.subject for r in p.records()]


def test_a_research_subject_whose_code_is_the_patients_mrn_is_refused(
        pipeline: Pipeline) -> None:
    bundle = transaction(entry(patient("1001"), PATIENT_URL),
                         entry(research_subject("1001"), SUBJECT_URL),
                         entry(infusion(), "urn:uuid:5f0e6a52-1f53-4c44-9d4a-0c1b3c2d4e03"),
                         entry(creatinine("L1", 88.4),
                               "urn:uuid:5f0e6a52-1f53-4c44-9d4a-0c1b3c2d5000"))
    with pytest.raises(InvalidResource) as caught:
        pipeline.process_bundle(bundle, sender="h1")
    text = str(caught.value)
    assert "subject code" in text and "identifier" in text and "1001" in text
    assert caught.value.http_status == 422
    assert caught.value.where.element is not None
    assert _participants(pipeline) == []  # nothing of the transaction stored
    # case and surrounding blanks do not hide it
    bundle["entry"][0]["resource"]["identifier"][0]["value"] = "ab-1001"
    bundle["entry"][1]["resource"]["identifier"][0]["value"] = "AB-1001"
    with pytest.raises(InvalidResource):
        pipeline.process_bundle(bundle, sender="h1")
    assert _participants(pipeline) == []


def test_nor_by_a_patient_that_comes_after_its_enrollment(pipeline: Pipeline) -> None:
    pipeline.enroll(MRN, "1001", "S-77")
    later = patient("1001")
    later["identifier"].append({"system": "https://hospital.example.org/national-id",
                                "value": "S-77"})
    with pytest.raises(InvalidResource) as caught:
        pipeline.process_resource(later, sender="h1")
    assert "S-77" in str(caught.value)
    with pipeline.store.read() as unit:
        assert unit.participant("S-77") is not None and unit.participant("S-77").patient_id is None
    assert pipeline.process_resource(patient("1001"), sender="h1").status == 201


def test_nor_by_enroll(pipeline: Pipeline) -> None:
    with pytest.raises(InvalidResource) as caught:
        pipeline.enroll(MRN, "1001", "1001")
    assert "1001" in str(caught.value)
    assert _participants(pipeline) == []


def test_nor_by_a_roster_row_and_then_no_row_is_enrolled(tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(f"identifier,subject\n{MRN}|2001,S-01\n{MRN}|2002,2002\n",
                      encoding="utf-8")
    env = {**os.environ, "FHIR_ADAPTER_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
           "FHIR_ADAPTER_TOKENS_FILE": str(tmp_path / "t.json")}
    done = subprocess.run([sys.executable, "-c", "from fhir_adapter.cli import main; main()",
                           "enroll", "--from", str(roster)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "roster.csv" in lines[0] and "3" in lines[0], lines
    assert "Traceback" not in done.stderr
    p = Pipeline.from_settings(Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}"))
    try:
        with p.store.read() as unit:
            assert unit.participant("S-01") is None
    finally:
        p.store.close()
