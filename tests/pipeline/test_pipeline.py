"""The pipeline on SQLite and PostgreSQL: identity, versions, withdrawal, all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from fhir_adapter.errors import InvalidResource, ReferenceError_
from fhir_adapter.pipeline import Pipeline
from fhir_adapter.settings import Settings
from tests.builders import (
    PATIENT_URL,
    creatinine,
    enrolled_bundle,
    entry,
    patient,
    transaction,
)

OTHER_URL = "urn:uuid:9f0e6a52-1f53-4c44-9d4a-0c1b3c2d4e09"
TEHRAN = timezone(timedelta(hours=3, minutes=30))


@pytest.fixture
def pipeline(store_url: str) -> Iterator[Pipeline]:
    p = Pipeline.from_settings(Settings(database_url=store_url))
    yield p
    p.store.close()


def _measurements(p: Pipeline) -> list:
    return [m for r in p.records() for m in r.measurements]


def test_the_same_bundle_twice_stores_nothing_twice(pipeline: Pipeline) -> None:
    bundle = enrolled_bundle(creatinine("L1", 88.4), creatinine("L2", 0.09, "mmol/L"))
    first = pipeline.process_bundle(bundle, sender="h1")
    counts = pipeline.store.row_counts()
    second = pipeline.process_bundle(bundle, sender="h1")
    assert [e.status for e in first.entries] == [201] * 5
    assert [e.state for e in second.entries] == ["unchanged"] * 5
    after = pipeline.store.row_counts()
    assert after.pop("audit") == counts.pop("audit") + 1  # the second call is audited
    assert after == counts
    assert (counts["resource"], counts["resource_version"], counts["measurement"]) == (5, 5, 2)
    # 88.4 umol/L / 88.4 = 1 mg/dL; 0.09 mmol/L x 1000 / 88.4 = 1.0180995... mg/dL
    values = sorted(m.value for m in _measurements(pipeline))
    assert values[0] == Decimal("1")
    assert abs(values[1] - Decimal("90") / Decimal("88.4")) < Decimal("1e-12")


def test_responses_in_request_order_with_location_and_etag(pipeline: Pipeline) -> None:
    outcome = pipeline.process_bundle(enrolled_bundle(creatinine("L1", 88.4)), sender="h1")
    response = outcome.response
    assert response["type"] == "transaction-response"
    kinds = [e["response"]["location"].split("/")[0] for e in response["entry"]]
    assert kinds == ["Patient", "ResearchSubject", "MedicationAdministration", "Observation"]
    first = response["entry"][0]["response"]
    assert first["status"] == "201 Created" and first["etag"] == 'W/"1"'
    assert first["location"].endswith("/_history/1")


def test_entered_in_error_withdraws_the_value(pipeline: Pipeline) -> None:
    pipeline.process_bundle(enrolled_bundle(creatinine("L1", 88.4)), sender="h1")
    withdrawn = creatinine("L1", 88.4, status="entered-in-error")
    out = pipeline.process_bundle(enrolled_bundle(withdrawn), sender="h1")
    assert out.entries[3].state == "updated" and out.entries[3].version == 2
    [m] = _measurements(pipeline)
    assert m.status == "entered-in-error" and not m.counts
    assert pipeline.store.row_counts()["measurement"] == 1
    assert "S-01" in pipeline.touched


def test_amended_replaces_the_value(pipeline: Pipeline) -> None:
    pipeline.process_bundle(enrolled_bundle(creatinine("L1", 88.4)), sender="h1")
    pipeline.process_bundle(enrolled_bundle(creatinine("L1", 176.8, status="amended")),
                            sender="h1")
    [m] = _measurements(pipeline)
    assert (m.value, m.status) == (Decimal("2"), "amended")  # 176.8 / 88.4
    counts = pipeline.store.row_counts()
    assert (counts["resource"], counts["resource_version"]) == (4, 5)


def test_a_failing_entry_leaves_nothing_of_the_transaction(pipeline: Pipeline) -> None:
    bundle = enrolled_bundle(creatinine("L1", 88.4), creatinine("L2", 3.0, "mmol/d"))
    with pytest.raises(InvalidResource) as caught:  # the profile or the mapper refuses it
        pipeline.process_bundle(bundle, sender="h1", source="labs.json")
    assert caught.value.where.entry == 4
    assert "mmol/d" in caught.value.line() and "labs.json" in caught.value.line()
    counts = pipeline.store.row_counts()
    assert sum(counts[t] for t in ("resource", "resource_key", "resource_version",
                                   "participant", "measurement", "infusion")) == 0


def test_a_dangling_urn_uuid_fails_the_transaction(pipeline: Pipeline) -> None:
    lost = creatinine("L1", 88.4, subject="urn:uuid:00000000-0000-4000-8000-000000000000")
    with pytest.raises(ReferenceError_) as caught:
        pipeline.process_bundle(enrolled_bundle(lost), sender="h1")
    assert caught.value.where.element == "Observation.subject.reference"
    assert pipeline.store.row_counts()["resource"] == 0


def test_a_post_retry_is_an_update(pipeline: Pipeline) -> None:
    pipeline.process_bundle(enrolled_bundle(), sender="h1")
    patient_key = pipeline.records()[0].participant.subject
    assert patient_key == "S-01"
    obs = creatinine("L9", 88.4, subject="Patient?identifier=https://hospital.example.org/mrn|1001")
    first = pipeline.process_resource(obs, sender="h1", method="POST")
    again = pipeline.process_resource(obs, sender="h1", method="POST")
    changed = pipeline.process_resource(creatinine(
        "L9", 97.24, subject="Patient?identifier=https://hospital.example.org/mrn|1001"),
        sender="h1", method="POST")
    assert (first.status, again.status, changed.status) == (201, 200, 200)
    assert (again.state, changed.state, changed.version) == ("unchanged", "updated", 2)
    assert first.id == again.id == changed.id
    [m] = _measurements(pipeline)
    assert m.value == Decimal("1.1")  # 97.24 / 88.4


def test_not_enrolled_patients_are_answered_not_kept(pipeline: Pipeline) -> None:
    bundle = transaction(entry(patient("2002"), PATIENT_URL),
                         entry(creatinine("L1", 88.4), OTHER_URL))
    out = pipeline.process_bundle(bundle, sender="h1")
    assert [(e.state, e.reason) for e in out.entries] == [("not-kept", "patient not enrolled")] * 2
    assert out.response["entry"][0]["response"]["outcome"]["issue"][0]["severity"] == "information"
    assert pipeline.store.row_counts()["resource"] == 0


def test_a_code_of_no_analyte_is_named_and_synthea_bun_is_urea(pipeline: Pipeline) -> None:
    hba1c = creatinine("L1", 5.4, "%", code="4548-4")
    bun = creatinine("L2", 10, "mg/dL", code="6299-2")  # Synthea's BUN: urea, 10 x 2.14
    out = pipeline.process_bundle(enrolled_bundle(hba1c, bun), sender="h1")
    skipped = out.entries[3]
    assert (skipped.state, skipped.reason) == ("not-kept", "code of no analyte")
    text = out.response["entry"][3]["response"]["outcome"]["issue"][0]["diagnostics"]
    assert text == "not kept: code of no analyte (http://loinc.org|4548-4)"
    [urea] = [m for m in _measurements(pipeline) if m.analyte == "urea"]
    assert urea.value == Decimal("21.4")


def test_enroll_before_the_patient_arrives(pipeline: Pipeline) -> None:
    pipeline.enroll("https://hospital.example.org/mrn", "2002", "S-77")
    bundle = transaction(entry(patient("2002"), PATIENT_URL),
                         entry(creatinine("L1", 88.4), OTHER_URL))
    out = pipeline.process_bundle(bundle, sender="h1")
    assert [e.state for e in out.entries] == ["created", "created"]
    [record] = pipeline.records()
    assert record.participant.subject == "S-77" and record.participant.sex == "female"
    assert record.day0 is None and len(record.measurements) == 1


def test_withdrawn_participant_keeps_old_data_takes_no_new(pipeline: Pipeline) -> None:
    from tests.builders import research_subject

    pipeline.process_bundle(enrolled_bundle(creatinine("L1", 88.4)), sender="h1")
    withdraw = transaction(entry(research_subject(status="withdrawn"),
                                 "urn:uuid:5f0e6a52-1f53-4c44-9d4a-0c1b3c2d4e02"),
                           entry(patient(), PATIENT_URL),
                           entry(creatinine("L2", 97.24), OTHER_URL))
    out = pipeline.process_bundle(withdraw, sender="h1")
    assert out.entries[2].reason == "participant withdrawn"
    assert [m.value for m in _measurements(pipeline)] == [Decimal("1")]


def test_specimen_arriving_later_sets_the_time(pipeline: Pipeline) -> None:
    obs = creatinine("L1", 88.4, subject="Patient?identifier=https://hospital.example.org/mrn|1001")
    obs["specimen"] = {"reference": "Specimen/sp-1"}
    pipeline.process_bundle(enrolled_bundle(), sender="h1")
    pipeline.process_resource(obs, sender="h1")
    assert _measurements(pipeline)[0].at == datetime(2024, 3, 24, 8, 0, tzinfo=TEHRAN)
    specimen = {"resourceType": "Specimen", "id": "sp-1",
                "subject": {"reference": "Patient?identifier=https://hospital.example.org/mrn|1001"},
                "collection": {"collectedDateTime": "2024-03-23T22:30:00Z"}}
    pipeline.process_resource(specimen, sender="h1")
    [m] = _measurements(pipeline)
    assert m.at == datetime(2024, 3, 24, 2, 0, tzinfo=TEHRAN)  # 22:30 UTC = 02:00 Tehran


def test_batch_entries_fail_alone(pipeline: Pipeline) -> None:
    pipeline.process_bundle(enrolled_bundle(), sender="h1")
    subject = "Patient?identifier=https://hospital.example.org/mrn|1001"
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        entry(creatinine("L1", 88.4, subject=subject), OTHER_URL),
        entry(creatinine("L2", 1.0, "mmol/d", subject=subject),
              "urn:uuid:1f0e6a52-1f53-4c44-9d4a-0c1b3c2d4e02"),
    ]}
    out = pipeline.process_bundle(bundle, sender="h1")
    assert [e.status for e in out.entries] == [201, 422]
    assert out.response["type"] == "batch-response"
    assert len(_measurements(pipeline)) == 1
    assert PATIENT_URL  # the bundles share the Patient's fullUrl
