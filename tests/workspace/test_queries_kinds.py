"""Every kind of query, from data sent on top of the samples: a preliminary result, an ALT of
CTCAE grade 2, a creatinine rise of more than 50 %, an implausible albumin, a refused entry and
data of a patient who is not enrolled. Expected values are worked out here by hand."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fhir_adapter.errors import AdapterError
from fhir_adapter.pipeline import Pipeline
from fhir_adapter.pipeline.workspace_access import workspace_of
from fhir_adapter.settings import Settings
from fhir_adapter.workspace import grid, queries
from tests.workspace.conftest import sample_files
from tests.workspace.plan_rules import PLAN

PARTICIPANTS = {p["subject"]: p for p in PLAN["participants"]}
LAB = "https://hospital.example.org/fhir/sid/lab-accession"


UNKNOWN_MRN = "70000007"


def observation(subject: str, accession: str, code: str, value: float, unit: str, at: str,
                status: str = "final") -> dict[str, Any]:
    patient = PARTICIPANTS[subject]["mrn"]["value"] if accession != "Q-7" else UNKNOWN_MRN
    return {
        "fullUrl": f"urn:uuid:00000000-0000-4000-8000-{abs(hash(accession)) % 10**12:012d}",
        "request": {"method": "PUT", "url": f"Observation?identifier={LAB}|{accession}"},
        "resource": {
            "resourceType": "Observation", "status": status,
            "identifier": [{"system": LAB, "value": accession}],
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                      "observation-category", "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": "Patient?identifier=https://hospital.example.org/fhir/"
                                     f"sid/mrn|{patient}"},
            "effectiveDateTime": at, "issued": at,
            "valueQuantity": {"value": value, "unit": unit, "system":
                              "http://unitsofmeasure.org", "code": unit},
        },
    }


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    folder = tmp_path_factory.mktemp("kinds")
    # this site keeps implausible values (a warning at the door) for the data manager to query
    pipeline = Pipeline.from_settings(Settings(database_url=f"sqlite:///{folder / 'k.db'}",
                                               implausible_values="warn"))
    assert not pipeline.ingest_paths(sample_files(), sender="cli").errors
    # FSGS-03, Day 0 2023-06-10 09:34 +03:30; ALT baseline 21 U/L (ULN 35 of its own
    # referenceRange; these carry none, so the study default 40): 150 > 3 x 40 -> grade 2
    # FSGS-02: creatinine baseline 0.50 mg/dL; 0.80 is +60 %
    # FSGS-04: a preliminary creatinine in its missed M7 (Day 0 2023-07-24, day 210)
    # FSGS-01: an albumin of 12 g/dL (plausible up to 7)
    entries = [
        observation("FSGS-03", "Q-1", "1742-6", 150, "U/L", "2023-07-01T08:00:00+03:30"),
        observation("FSGS-02", "Q-2", "2160-0", 0.8, "mg/dL", "2023-05-10T08:00:00+03:30"),
        observation("FSGS-04", "Q-3", "2160-0", 0.3, "mg/dL", "2024-02-19T08:00:00+03:30",
                    status="preliminary"),
        observation("FSGS-01", "Q-4", "1751-7", 12, "g/dL", "2023-06-02T08:00:00+03:30"),
        # refused: a unit that cannot be converted, for FSGS-04's missed M7
        observation("FSGS-04", "Q-5", "2889-4", 5, "mmol/d", "2024-02-19T08:30:00+03:30"),
        # not enrolled: a patient the adapter does not know
        {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000099",
         "request": {"method": "POST", "url": "Patient"},
         "resource": {"resourceType": "Patient", "gender": "male", "identifier": [
             {"system": "https://hospital.example.org/fhir/sid/mrn", "value": "99999999"}]}},
    ]
    outcome = pipeline.process_bundle({"resourceType": "Bundle", "type": "batch",
                                       "entry": copy.deepcopy(entries)}, sender="ehr-a")
    states = [e.state for e in outcome.entries]
    assert states[:4] == ["created"] * 4 and states[4] == "error" and states[5] == "not-kept"
    # refused on its own: a patient named by an MRN the adapter does not know
    unknown = observation("FSGS-01", "Q-7", "2160-0", 0.5, "mg/dL", "2023-06-03T08:00:00+03:30")
    with pytest.raises(AdapterError):
        pipeline.process_resource(unknown["resource"], sender="ehr-b", method="POST")
    yield pipeline
    pipeline.store.close()


def test_every_kind_of_query(loaded: Pipeline) -> None:
    workspace = workspace_of(loaded)
    found = queries(workspace.snapshot(), workspace.rules)
    by_kind: dict[str, list[Any]] = {}
    for q in found:
        by_kind.setdefault(q.kind, []).append(q)
    safety = {(q.subject, q.analyte) for q in by_kind["safety"]}
    assert safety == {("FSGS-03", "alt"), ("FSGS-02", "creatinine")}
    alt = next(q for q in by_kind["safety"] if q.analyte == "alt")
    assert "grade 2" in alt.reason and alt.source  # a pseudonymous source id
    rise = next(q for q in by_kind["safety"] if q.analyte == "creatinine")
    assert "+60.0 %" in rise.reason
    assert [(q.subject, q.analyte, q.visit) for q in by_kind["preliminary"]] == [
        ("FSGS-04", "creatinine", "M7")]
    assert [(q.subject, q.analyte) for q in by_kind["implausible"]] == [("FSGS-01", "albumin")]
    # a participant's value, and the row of the call for the unknown patient's
    [refused] = [q for q in by_kind["refused"] if q.subject]
    [unnamed] = [q for q in by_kind["refused"] if not q.subject]
    assert unnamed.source == "ehr-b" and "matches no resource" in unnamed.reason
    assert not any(UNKNOWN_MRN in q.reason for q in found)  # identifiers blanked
    assert not any(UNKNOWN_MRN in e.outcome for e in workspace.snapshot().audit)
    assert (refused.subject, refused.analyte, refused.visit, refused.source) == (
        "FSGS-04", "urine-protein-24h", "M7", "ehr-a")
    # the problem and the analyte's code, not what the sender wrote (research tokens see it)
    assert "422" in refused.reason and "'…'" in refused.reason and "2889-4" in refused.reason
    assert "mmol/d" not in refused.reason
    assert [q.reason.split()[0] for q in by_kind["not-enrolled"]] == ["1"]
    assert by_kind["not-enrolled"][0].subject == ""  # no identity
    # safety signals come first
    assert found[0].kind == "safety"
    # the grid: the preliminary creatinine is FSGS-04's M7 cell, which stays missed otherwise
    snapshot = workspace.snapshot()
    assert {r.view.subject: r for r in grid(snapshot, "creatinine")}["FSGS-04"] \
        .cells["M7"].state == "preliminary"
    assert {r.view.subject: r for r in grid(snapshot, "urea")}["FSGS-04"] \
        .cells["M7"].state == "missed"
    protein = {r.view.subject: r for r in grid(snapshot, "urine-protein-24h")}["FSGS-04"]
    assert protein.cells["M7"].state == "refused"
    assert "2889-4" in protein.cells["M7"].refused[0].reason
    # all analytes: the refusal first, then the preliminary value, over the missed ones
    every = {r.view.subject: r for r in grid(snapshot)}["FSGS-04"].cells["M7"]
    assert every.state == "refused"
    assert every.analytes["creatinine"] == "preliminary" and every.analytes["urea"] == "missed"


def test_a_token_scope_ui_is_read_only_for_fhir(tmp_path: Path) -> None:
    from fhir_adapter.store.tokens import TokenFile

    tokens = TokenFile(tmp_path / "t.json")
    secret = tokens.create("manager", ["ui"])
    principal = tokens.verify(secret)
    assert principal is not None and principal.scope_text() == "ui"
    assert principal.allows("ui", "r") and not principal.allows("Observation", "r")
