"""Audit rows, the representation of what was stored, a lost create race, trial-patient."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from fhir_adapter.errors import InvalidResource, ProfileError
from fhir_adapter.pipeline import Pipeline
from fhir_adapter.pipeline import writer as writer_module
from fhir_adapter.settings import Settings
from tests.builders import (
    MRN,
    PATIENT_URL,
    creatinine,
    enrolled_bundle,
    entry,
    patient,
    research_subject,
    transaction,
)

SUBJECT_BY_MRN = f"Patient?identifier={MRN}|1001"
OBS_URL = "urn:uuid:9f0e6a52-1f53-4c44-9d4a-0c1b3c2d4e09"


@pytest.fixture
def pipeline(store_url: str) -> Iterator[Pipeline]:
    p = Pipeline.from_settings(Settings(database_url=store_url))
    yield p
    p.store.close()


def _count(p: Pipeline, rtype: str) -> int:
    with p.store.read() as unit:
        return unit.count_by_type().get(rtype, 0)


# -- audit ------------------------------------------------------------------------------------
def test_a_transaction_is_audited_with_what_it_touched(pipeline: Pipeline) -> None:
    out = pipeline.process_bundle(enrolled_bundle(creatinine("L1", 88.4)), sender="h1")
    [row] = pipeline.audit_records()
    assert row["sender"] == "h1" and row["action"] == "transaction"
    assert sorted(row["resources"]) == sorted(f"{e.resource_type}/{e.id}" for e in out.entries)
    assert len(row["resources"]) == 4
    assert row["outcome"].startswith("200 OK: 4 created")
    assert row["at"].tzinfo is not None


def test_a_refused_transaction_leaves_only_its_audit_row(pipeline: Pipeline) -> None:
    bad = enrolled_bundle(creatinine("L1", 88.4), creatinine("L2", 3.0, "mmol/d"))
    with pytest.raises(InvalidResource):
        pipeline.process_bundle(bad, sender="h2", source="labs.json")
    counts = pipeline.store.row_counts()
    assert counts["resource"] == 0 and counts["participant"] == 0
    [row] = pipeline.audit_records()
    assert row["sender"] == "h2" and row["resources"] == []
    assert row["outcome"].startswith("422 ") and "mmol/d" in row["outcome"]
    assert "labs.json: entry 4" in row["outcome"]


def test_single_writes_and_batches_are_audited_once_per_call(pipeline: Pipeline) -> None:
    pipeline.process_bundle(enrolled_bundle(), sender="h1")
    created = pipeline.process_resource(creatinine("L9", 88.4, subject=SUBJECT_BY_MRN),
                                        sender="h1", method="POST")
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        entry(creatinine("L1", 88.4, subject=SUBJECT_BY_MRN), OBS_URL),
        entry(creatinine("L2", 1.0, "mmol/d", subject=SUBJECT_BY_MRN),
              "urn:uuid:1f0e6a52-1f53-4c44-9d4a-0c1b3c2d4e02")]}
    pipeline.process_bundle(batch, sender="h3")
    newest, single, first = pipeline.audit_records(limit=3)
    assert (first["action"], single["action"], newest["action"]) == (
        "transaction", "create", "batch")
    assert single["resources"] == [f"Observation/{created.id}"]
    assert single["outcome"].startswith("201 Created")
    assert newest["sender"] == "h3" and len(newest["resources"]) == 1
    assert "1 created" in newest["outcome"] and "1 error (422" in newest["outcome"]
    assert len(pipeline.audit_records(limit=2)) == 2


# -- representation (Prefer: return=representation) -------------------------------------------
def test_the_representation_is_the_resource_as_held(pipeline: Pipeline) -> None:
    out = pipeline.process_bundle(enrolled_bundle(creatinine("L1", 88.4)), sender="h1")
    patient_entry, obs = out.entries[0], out.entries[3]
    body = obs.response_entry()["resource"]
    assert body["id"] == obs.id != None  # noqa: E711
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"] == obs.last_modified.isoformat()  # type: ignore[union-attr]
    assert body["subject"] == {"reference": f"Patient/{patient_entry.id}"}
    assert body["valueQuantity"]["value"] == 88.4  # the content itself as sent
    again = pipeline.process_resource(
        {**creatinine("L1", 97.24, status="amended"), "subject": {"reference": SUBJECT_BY_MRN}},
        sender="h1", method="POST")
    assert again.resource is not None and again.resource["meta"]["versionId"] == "2"
    assert again.resource["subject"] == {"reference": f"Patient/{patient_entry.id}"}
    minimal = pipeline.process_resource(creatinine("L3", 90.0, subject=SUBJECT_BY_MRN),
                                        sender="h1", prefer="minimal")
    assert minimal.resource is None and minimal.location is not None


# -- a create race lost to another writer -----------------------------------------------------
def test_a_patient_created_meanwhile_keeps_its_data(pipeline: Pipeline,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The planned id of the Patient loses to one another writer stored in between (what
    the unique key settles under concurrency): its Observations must follow the winner,
    not be answered "patient not enrolled"."""
    pipeline.enroll(MRN, "1001", "S-09")
    first = pipeline.process_bundle(transaction(entry(patient(), PATIENT_URL)), sender="h1")
    winner = first.entries[0].id
    real_plan = writer_module.plan

    def stale_plan(unit: Any, request: Any, *, sender: str, file: str | None) -> None:
        real_plan(unit, request, sender=sender, file=file)
        if request.resource_type == "Patient":  # as if read before the other writer committed
            request.existing, request.id = None, uuid.uuid4().hex

    monkeypatch.setattr(writer_module, "plan", stale_plan)
    other = "urn:uuid:0a0e6a52-1f53-4c44-9d4a-0c1b3c2d4e01"
    bundle = transaction(entry(patient(), other), entry(creatinine("L1", 88.4, subject=other),
                                                         OBS_URL))
    out = pipeline.process_bundle(bundle, sender="h2")
    assert [e.state for e in out.entries] == ["unchanged", "created"]
    assert out.entries[0].id == winner
    held = out.entries[1].resource
    assert held is not None and held["subject"] == {"reference": f"Patient/{winner}"}
    [record] = pipeline.records()
    assert record.participant.subject == "S-09" and len(record.measurements) == 1
    assert _count(pipeline, "Patient") == 1


# -- trial-patient applies to the Patient of an enrolled participant --------------------------
def _no_birth_date() -> dict[str, Any]:
    body = patient()
    del body["birthDate"]
    return body


def test_trial_patient_applies_only_to_enrolled_patients(pipeline: Pipeline) -> None:
    lone = transaction(entry(_no_birth_date(), PATIENT_URL))
    out = pipeline.process_bundle(lone, sender="h1")  # not enrolled: base R4 only, not kept
    assert [(e.state, e.reason) for e in out.entries] == [("not-kept", "patient not enrolled")]

    with_subject = transaction(entry(_no_birth_date(), PATIENT_URL),
                               entry(research_subject(), "urn:uuid:5f0e6a52-1f53-4c44-9d4a-0c1b"
                                                         "3c2d4e02"))
    with pytest.raises(ProfileError) as caught:  # enrolled by the ResearchSubject beside it
        pipeline.process_bundle(with_subject, sender="h1")
    assert caught.value.http_status == 422 and caught.value.where.entry == 0
    assert "birthDate" in (caught.value.where.element or "")
    assert pipeline.store.row_counts()["resource"] == 0

    pipeline.enroll(MRN, "1001", "S-10")  # enrolled by identifier, before the Patient comes
    with pytest.raises(ProfileError):
        pipeline.process_resource(_no_birth_date(), sender="h1")
    assert pipeline.process_resource(patient(), sender="h1").status == 201


def test_validate_reports_every_issue_and_stores_nothing(pipeline: Pipeline) -> None:
    obs = creatinine("L1", 1.0, "kg", subject="Patient/p1")
    obs["status"] = "finished"
    outcome = pipeline.validate(obs, resource_type="Observation")
    expressions = {e for i in outcome["issue"] if i["severity"] == "error"
                   for e in i.get("expression", [])}
    assert {"Observation.status", "Observation.valueQuantity.code"} <= expressions
    clean = pipeline.validate(patient())
    assert clean["issue"] == [{"severity": "information", "code": "informational",
                               "diagnostics": "valid"}]
    assert pipeline.store.row_counts()["resource"] == 0


def test_validate_a_bundle_knows_who_is_enrolled(pipeline: Pipeline) -> None:
    bundle = transaction(entry(_no_birth_date(), PATIENT_URL),
                         entry(_no_birth_date() | {"identifier": [{"system": MRN,
                                                                   "value": "2002"}]},
                               "urn:uuid:0a0e6a52-1f53-4c44-9d4a-0c1b3c2d4e01"))
    assert all(i["severity"] == "information" for i in pipeline.validate(bundle)["issue"])
    pipeline.enroll(MRN, "2002", "S-11")
    errors = [i for i in pipeline.validate(bundle)["issue"] if i["severity"] == "error"]
    assert [i["expression"] for i in errors] == [["Bundle.entry[1].resource.birthDate"]]


def test_validate_refuses_what_is_not_fhir(pipeline: Pipeline) -> None:
    from fhir_adapter.errors import UnusableInput

    for document in ({"hello": 1}, {"resourceType": 3}):
        with pytest.raises(UnusableInput):
            pipeline.validate(document)
    with pytest.raises(UnusableInput):
        pipeline.validate(patient(), resource_type="Observation")


# -- one resource once per transaction, one patient one participant ---------------------------
def test_a_transaction_naming_one_resource_twice_fails(pipeline: Pipeline) -> None:
    from fhir_adapter.errors import ConflictError

    bundle = enrolled_bundle(creatinine("DUP", 88.4), creatinine("DUP", 97.24))
    with pytest.raises(ConflictError) as caught:
        pipeline.process_bundle(bundle, sender="h1")
    assert caught.value.where.entry == 4 and "entries 3 and 4" in caught.value.message
    assert pipeline.store.row_counts()["resource"] == 0


def test_a_second_subject_code_for_a_participant_is_a_conflict(pipeline: Pipeline) -> None:
    from fhir_adapter.errors import ConflictError

    pipeline.process_bundle(enrolled_bundle(), sender="h1")  # the patient is S-01
    counts = pipeline.store.row_counts()
    again = transaction(entry(research_subject(code="S-02"),
                              "urn:uuid:5f0e6a52-1f53-4c44-9d4a-0c1b3c2d4e02"),
                        entry(patient(), PATIENT_URL))
    with pytest.raises(ConflictError) as caught:
        pipeline.process_bundle(again, sender="h1")
    assert "S-01" in caught.value.message and "S-02" in caught.value.message
    after = pipeline.store.row_counts()
    assert after.pop("audit") == counts.pop("audit") + 1 and after == counts
    assert [r.participant.subject for r in pipeline.records()] == ["S-01"]


def test_entered_in_error_without_a_value_withdraws_the_stored_one(pipeline: Pipeline) -> None:
    pipeline.process_bundle(enrolled_bundle(creatinine("L1", 88.4)), sender="h1")
    withdrawn = creatinine("L1", 88.4, status="entered-in-error", subject=SUBJECT_BY_MRN)
    del withdrawn["valueQuantity"]
    withdrawn["dataAbsentReason"] = {"text": "sample mislabelled"}
    out = pipeline.process_resource(withdrawn, sender="h1", method="PUT",
                                    conditional="identifier=https://hospital.example.org/lab|L1")
    assert (out.state, out.version) == ("updated", 2)
    [record] = pipeline.records()
    [m] = record.measurements
    assert m.status == "entered-in-error" and not m.counts
    assert "S-01" in pipeline.touched
    never = creatinine("L7", 88.4, status="entered-in-error", subject=SUBJECT_BY_MRN)
    del never["valueQuantity"]
    never["dataAbsentReason"] = {"text": "not done"}
    first = pipeline.process_resource(never, sender="h1")  # nothing stored to withdraw
    assert first.state == "not-kept"
