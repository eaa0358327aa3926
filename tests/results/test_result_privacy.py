"""Nothing that identifies a person at the hospital leaves in a result Bundle (RESULTS.md)."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fhir_adapter.results import ResultBuilder
from fhir_adapter.trial.model import Participant, ParticipantEndpoints, VisitResult
from tests.results.result_fixtures import (
    BASE,
    KEY,
    SECRETS,
    SUBJECT,
    hand_sources,
    hospital_patient,
    participants,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SYNTHEA = DATA / "synthea" / "Andrea_Dach_76f26ce3-5aac-4b16-ac35-321ff6a7f63c.json"


def _both_forms(builder: ResultBuilder, endpoints, sources) -> list[str]:
    results = [r for e in endpoints for r in builder.endpoint_resources(e)]
    return [
        json.dumps(builder.bundle(results, participants=participants(), sources=sources, form=form))
        for form in ("collection", "transaction")
    ]


def test_hand_made_identifiers_never_leave(builder, endpoints, sources, summary):
    # the hospital Patient itself is not an input of the builder; the secrets are also
    # planted in every source Observation (names, MRN, birth date, address, telecom, ids)
    patient_strings = json.dumps(hospital_patient())
    planted = json.dumps(sources)
    for secret in SECRETS:
        assert secret in patient_strings or secret in planted, secret
    for text in _both_forms(builder, endpoints, sources):
        for secret in SECRETS:
            assert secret.lower() not in text.lower(), secret
        for key in sources:  # the adapter's own ids are not published either
            assert key.split("/")[1] not in text


def test_source_observation_keeps_the_clinical_content_only(builder, endpoints, sources):
    results = builder.endpoint_resources(endpoints[0])
    bundle = builder.bundle(results, participants=participants(), sources=sources)
    key = next(iter(sources))
    source_id = builder.source_id(key)
    (source,) = [e["resource"] for e in bundle["entry"] if e["resource"]["id"] == source_id]
    assert set(source) - {"meta"} == {
        "resourceType", "id", "identifier", "status", "category", "code", "subject",
        "effectiveDateTime", "issued", "valueQuantity",
    }  # fmt: skip
    assert set(source.get("meta", {})) <= {"versionId", "lastUpdated"}  # the store's version
    assert source["identifier"] == [{"system": f"{BASE}/source-observation", "value": source_id}]
    assert source["valueQuantity"] == sources[key]["valueQuantity"]
    assert source["effectiveDateTime"] == sources[key]["effectiveDateTime"]
    patient = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"][0]
    assert source["subject"]["reference"] == f"Patient/{patient['resource']['id']}"
    assert patient["resource"]["identifier"][0]["value"] == SUBJECT


def test_source_ids_are_a_keyed_hash_of_the_adapter_key(builder, study, catalogue):
    key = next(iter(hand_sources()))
    digest = hmac.new(KEY, key.encode(), hashlib.sha256).digest()
    assert builder.source_id(key) == str(uuid.UUID(bytes=digest[:16], version=4))
    other = ResultBuilder(study, catalogue, pseudonym_key=b"another secret of 32 bytes......")
    assert other.source_id(key) != builder.source_id(key)
    assert builder.source_id(key) != key.split("/")[1]


def _synthea_strings(bundle: dict[str, Any]) -> list[str]:
    """Every name, identifier value, birth date, address and telecom of the Patient, and the
    id and fullUrl of every resource of the export."""
    found: list[str] = []
    for entry in bundle["entry"]:
        resource = entry["resource"]
        found += [entry["fullUrl"], resource["id"]]
        if resource["resourceType"] != "Patient":
            continue
        for name in resource.get("name", []):
            found += [name["family"], *name.get("given", []), *name.get("prefix", [])]
        found += [i["value"] for i in resource.get("identifier", [])]
        found += [resource["birthDate"]]
        for address in resource.get("address", []):
            found += [*address.get("line", []), address["city"], address.get("postalCode", "")]
        found += [t["value"] for t in resource.get("telecom", [])]
        found += [e["valueString"] for e in resource["extension"] if "valueString" in e]
    return [s for s in found if len(s) >= 4]


@pytest.mark.skipif(not SYNTHEA.exists(), reason=f"real data folder absent: {SYNTHEA}")
def test_a_real_ehr_export_leaves_no_trace(builder):
    export = json.loads(SYNTHEA.read_text())
    observations = [
        e["resource"]
        for e in export["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and e["resource"]["code"]["coding"][0]["code"] in ("38483-4", "1742-6")
    ]
    assert len(observations) >= 4
    sources = {f"Observation/{uuid.uuid4().hex}": o for o in observations}
    keys = list(sources)
    results = [
        VisitResult(
            "NCT02382874-7", "renal-function", "creatinine", f"M{i + 2}",
            Decimal(str(sources[k]["valueQuantity"]["value"])), "mg/dL",
            datetime.fromisoformat(sources[k]["effectiveDateTime"]),
            sources=(k, keys[0]),
        )
        for i, k in enumerate(keys[1:4])
    ]  # fmt: skip
    endpoints = ParticipantEndpoints("NCT02382874-7", results, [])
    stored = builder.endpoint_resources(endpoints)
    secrets = _synthea_strings(export)
    assert len(secrets) > 100
    for form in ("collection", "transaction"):
        bundle = builder.bundle(
            stored,
            participants=[Participant("NCT02382874-7", "female")],
            sources=sources,
            form=form,
        )
        text = json.dumps(bundle)
        published = [
            e
            for e in bundle["entry"]
            if e["resource"].get("identifier", [{}])[0].get("system")
            == f"{BASE}/source-observation"
        ]
        assert len(published) == 4
        leaked = [s for s in secrets if s in text]
        assert leaked == []
