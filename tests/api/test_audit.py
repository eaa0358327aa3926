"""Every write is audited: who (the token's name), when, which resources, the outcome."""

from __future__ import annotations

from tests.api.api_harness import FHIR_JSON, Live
from tests.builders import HOSPITAL, hospital_patient, lab_creatinine, linked_bundle

HEADERS = {"Content-Type": FHIR_JSON}


def test_writes_and_refusals_are_audited(live: Live) -> None:
    live.pipeline.enroll(HOSPITAL, "MRN-A1", "FSGS-070")
    good = linked_bundle(
        hospital_patient("MRN-A1"), lab_creatinine("{ref:0}", 0.7, "2024-08-01T08:00:00Z")
    )
    bad = linked_bundle(
        hospital_patient("MRN-A1"), lab_creatinine("{ref:0}", 0.7, "2024-08-02", unit="kg")
    )
    with live.client(live.ehr) as client:
        accepted = client.post("", json=good, headers=HEADERS)
    with live.client(live.other_ehr) as client:
        refused = client.post("", json=bad, headers=HEADERS)
    assert accepted.status_code == 200 and refused.status_code == 422
    kept = [e["response"]["location"].split("/_history")[0] for e in accepted.json()["entry"]]

    with live.pipeline.store.read() as unit:
        rows = list(reversed(unit.audit_rows(limit=10)))  # oldest first
    assert [r.who for r in rows] == ["hospital-a", "hospital-b"]
    first, second = rows
    assert sorted(first.resources) == sorted(kept)
    assert "200" in first.outcome or "ok" in first.outcome.lower()
    assert "422" in second.outcome or "kg" in second.outcome
    assert first.at <= second.at and first.at.tzinfo is not None
