"""Real FHIR client libraries, unmodified: fhirpy (create, transaction, search), fhirclient."""

from __future__ import annotations

import pytest
from fhirclient import client as smart_client
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.observation import Observation
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import AuthorizationError, ForbiddenError

from tests.api.api_harness import Live, sample_files
from tests.builders import HOSPITAL, hospital_patient, lab_creatinine, linked_bundle


def _smart(live: Live, token: str) -> smart_client.FHIRClient:
    smart = smart_client.FHIRClient(settings={"app_id": "tests", "api_base": live.base + "/"})
    smart.server.session.headers["Authorization"] = f"Bearer {token}"
    return smart


def test_fhirpy_create_transaction_and_search(live: Live) -> None:
    live.pipeline.enroll(HOSPITAL, "MRN-P1", "FSGS-060")
    ehr = SyncFHIRClient(live.base, authorization=f"Bearer {live.ehr}")
    created = ehr.resource("Patient", **hospital_patient("MRN-P1"))
    created.save()
    assert created.id and len(created.id) == 32  # the adapter's id, not one the client chose
    answer = ehr.execute("", method="post", data=linked_bundle(
        hospital_patient("MRN-P1"), lab_creatinine("{ref:0}", 0.8, "2024-07-01T09:00:00+02:00")))
    assert answer["type"] == "transaction-response"
    assert answer["entry"][0]["response"]["location"].startswith(f"Patient/{created.id}/")
    assert answer["entry"][1]["response"]["status"] == "201 Created"
    with pytest.raises(ForbiddenError):  # an EHR token reads no results
        ehr.resources("Observation").search(code="2160-0").fetch()
    with pytest.raises(AuthorizationError):
        SyncFHIRClient(live.base).resources("Observation").fetch()

    live.pipeline.ingest_paths(sample_files())
    research = SyncFHIRClient(live.base, authorization=f"Bearer {live.research}")
    found = research.resources("Observation").search(code="2160-0").fetch()
    assert found and all(o["resourceType"] == "Observation" for o in found)
    assert all("Patient/" in o["subject"]["reference"] for o in found)
    with pytest.raises(ForbiddenError):  # a research token writes nothing
        research.resource("Patient", **hospital_patient("MRN-P2")).save()


def test_fhirclient_capability_and_read(live: Live) -> None:
    statement = CapabilityStatement.read_from("metadata", _smart(live, live.research).server)
    assert statement.fhirVersion == "4.0.1" and "json" in statement.format
    rest = statement.rest[0]
    types = {r.type: r for r in rest.resource}
    assert {"Patient", "Observation", "MedicationAdministration", "Specimen",
            "ResearchSubject", "ResearchStudy"} <= set(types)
    assert {"create", "update"} <= {i.code for i in types["Observation"].interaction}
    assert {i.code for i in rest.interaction} == {"transaction", "batch"}
    assert "system/*.rs" in rest.security.description
    assert {o.name for o in types["ResearchStudy"].operation} == {"endpoint-results"}
    assert {o.name for o in types["Observation"].operation} == {"validate"}

    live.pipeline.ingest_paths(sample_files())
    smart = _smart(live, live.research)
    bundle = smart.server.request_json("Observation?code=2160-0")
    first = bundle["entry"][0]["resource"]
    read = Observation.read(first["id"], smart.server)
    assert read.id == first["id"] and read.status in ("final", "amended")
    assert read.subject.reference == first["subject"]["reference"]
