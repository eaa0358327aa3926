"""Hostile but well-formed requests over real HTTP, on SQLite and on PostgreSQL: each is answered
with an OperationOutcome (never a 500), the same on both databases, and a refused request stores
nothing (only its audit row)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.api_harness import FHIR_JSON, Live, make_settings, make_tokens, start
from tests.builders import HOSPITAL, hospital_patient, lab_creatinine, linked_bundle

JSON_HEADERS = {"Content-Type": FHIR_JSON}
STUDY = {"identifier": {"system": "https://clinicaltrials.gov", "value": "NCT02382874"}}


@pytest.fixture
def served(tmp_path: Path, store_url: str) -> Iterator[Live]:
    settings = make_settings(tmp_path, store_url)
    yield from start(settings, make_tokens(settings.tokens_file))


@pytest.fixture
def served_warn(tmp_path: Path, store_url: str) -> Iterator[Live]:
    """Implausible values kept with a warning: what is left to refuse them is their size."""
    settings = make_settings(tmp_path, store_url).model_copy(
        update={"implausible_values": "warn"})
    yield from start(settings, make_tokens(settings.tokens_file))


def _enrolled(mrn: str, *more: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    """A Patient, its ResearchSubject (subject code S-{mrn}) and ``more`` about the Patient."""
    subject = {"resourceType": "ResearchSubject", "status": "on-study", "study": STUDY,
               "identifier": [{"system": "https://hospital.example.org/subject",
                               "value": f"S-{mrn}"}],
               "individual": {"reference": "{ref:0}"}}
    bundle = linked_bundle(hospital_patient(mrn), subject, *more, kind=kind)
    bundle["entry"][1]["resource"]["individual"]["reference"] = bundle["entry"][0]["fullUrl"]
    return bundle


def _rows(live: Live) -> dict[str, int]:
    counts = live.pipeline.store.row_counts()
    counts.pop("audit")
    counts.pop("adapter_secret", None)
    return counts


def _post(live: Live, body: Any, path: str = "") -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    with live.client(live.ehr) as client:
        return client.post(path, content=content, headers=JSON_HEADERS)


def _refused(live: Live, body: Any, path: str = "", *, statuses: tuple[int, ...] = (400, 422)
             ) -> dict[str, Any]:
    """Posts ``body``; asserts it is refused with an OperationOutcome and stores nothing."""
    before = _rows(live)
    response = _post(live, body, path)
    assert response.status_code in statuses, (response.status_code, response.text[:1000])
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome", outcome
    assert _rows(live) == before
    return outcome


def _diagnostics(outcome: dict[str, Any]) -> str:
    return " ".join(str(i.get("diagnostics", "")) + " " + " ".join(i.get("expression", []))
                    for i in outcome["issue"])


# -- point 1: numbers the store and the endpoint arithmetic cannot hold ----------------------
@pytest.mark.parametrize("value", [1e300, 1e-300, 3.4028235e38, 1.7976931348623157e308,
                                   1e18, 1e-35])
def test_a_value_too_large_or_too_precise_is_refused(served_warn: Live, value: float) -> None:
    bundle = _enrolled("N1", lab_creatinine("{ref:0}", value, "2024-05-01T08:00:00Z"))
    outcome = _refused(served_warn, bundle)
    assert "valueQuantity.value" in _diagnostics(outcome)
    assert "digits" in _diagnostics(outcome)


def test_values_at_the_bounds_are_kept(served_warn: Live) -> None:
    bundle = _enrolled("N2", lab_creatinine("{ref:0}", 1e-34, "2024-05-01T08:00:00Z"),
                       lab_creatinine("{ref:0}", 999999999999999999, "2024-05-02T08:00:00Z"),
                       lab_creatinine("{ref:0}", 0.008946854200584387, "2024-05-03T08:00:00Z"))
    response = _post(served_warn, bundle)
    assert response.status_code == 200, response.text[:1000]


# -- point 7: what the schema cannot hold, answered the same on both databases --------------
def test_a_nul_character_is_refused(served: Live) -> None:
    """R4 strings SHOULD hold no character below U+0020 but tab, CR and LF (datatypes.html
    #string), and PostgreSQL keeps no NUL in text or jsonb: refused as an error."""
    patient = hospital_patient("NUL1", family="Test\u0000person")
    outcome = _refused(served, patient, "Patient")
    assert "Patient.name[0].family" in _diagnostics(outcome)
    assert "U+0000" in _diagnostics(outcome)
    bundle = _enrolled("NUL2", lab_creatinine("{ref:0}", 0.6, "2024-05-01T08:00:00Z",
                                              ident="A\u0000B"))
    _refused(served, bundle)


def test_a_nul_character_in_the_url_is_refused(served: Live) -> None:
    with served.client(served.research) as client:
        for path in ("Observation?subject=a%00b", "Observation/a%00b", "Patient?_id=%00"):
            response = client.get(path)
            assert response.status_code == 400, (path, response.text[:500])
            assert response.json()["resourceType"] == "OperationOutcome"


def test_a_long_identifier_is_kept_the_same_on_both_databases(served: Live) -> None:
    long_value = "v" * 700
    bundle = _enrolled("LONG1", lab_creatinine("{ref:0}", 0.6, "2024-05-01T08:00:00Z",
                                               ident=long_value))
    first = _post(served, bundle)
    assert first.status_code == 200, first.text[:1000]
    # the same identifier again is the same resource: a new version, not a second resource
    again = _enrolled("LONG1", lab_creatinine("{ref:0}", 0.7, "2024-05-01T08:00:00Z",
                                              ident=long_value))
    second = _post(served, again)
    assert second.status_code == 200, second.text[:1000]
    locations = [e["response"].get("location", "") for e in second.json()["entry"]]
    assert locations[2].split("/_history/")[1] == "2"
    assert locations[2].split("/_history/")[0] == \
        first.json()["entry"][2]["response"]["location"].split("/_history/")[0]
    with served.client(served.ehr) as client:  # a conditional update by that identifier
        obs = lab_creatinine(f"Patient?identifier={HOSPITAL}|LONG1", 0.8,
                             "2024-05-01T08:00:00Z", ident=long_value)
        response = client.put("Observation", params={
            "identifier": f"urn:oid:1.2.3.4.5.7|{long_value}"}, content=json.dumps(obs),
            headers=JSON_HEADERS)
    assert response.status_code == 200, response.text[:1000]
    assert response.headers["location"].split("/_history/")[1].startswith("3")


def test_a_long_subject_code_is_refused_the_same_on_both_databases(served: Live) -> None:
    bundle = _enrolled("LONG2")
    bundle["entry"][1]["resource"]["identifier"][0]["value"] = "S" * 201
    outcome = _refused(served, bundle)
    assert "200" in _diagnostics(outcome)
    bundle["entry"][1]["resource"]["identifier"][0]["value"] = "S" * 200
    assert _post(served, bundle).status_code == 200


# -- point 12: what R4 forbids ------------------------------------------------------------
def test_an_entry_method_not_an_http_verb_is_refused(served: Live) -> None:
    for method in ("FOO", 5):
        bundle = _enrolled("M1", lab_creatinine("{ref:0}", 0.6, "2024-05-01T08:00:00Z"))
        bundle["entry"][2]["request"]["method"] = method
        assert "request.method" in _diagnostics(_refused(served, bundle))


def test_an_id_over_64_characters_is_refused(served: Live) -> None:
    """R4 id: [A-Za-z0-9\\-\\.]{1,64} (datatypes.html#id)."""
    bundle = _enrolled("ID1", lab_creatinine("{ref:0}", 0.6, "2024-05-01T08:00:00Z"))
    bundle["entry"][2]["resource"]["id"] = "a" * 65
    assert "Bundle.entry[2].resource.id" in _diagnostics(_refused(served, bundle))
    with served.client(served.ehr) as client:
        body = hospital_patient("ID2") | {"id": "b" * 65}
        response = client.put(f"Patient/{'b' * 65}", content=json.dumps(body),
                              headers=JSON_HEADERS)
    assert response.status_code == 400, response.text[:500]
    bundle["entry"][2]["resource"]["id"] = "a" * 64
    assert _post(served, bundle).status_code == 200


def test_a_urn_uuid_that_is_no_uuid_is_refused(served: Live) -> None:
    """A urn:uuid: names a UUID (RFC 4122 section 3; R4 datatypes.html#uuid)."""
    bundle = _enrolled("U1", lab_creatinine("{ref:0}", 0.6, "2024-05-01T08:00:00Z"))
    bundle["entry"][2]["fullUrl"] = "urn:uuid:not-a-uuid"
    assert "fullUrl" in _diagnostics(_refused(served, bundle))


def test_an_unknown_element_on_the_bundle_is_refused(served: Live) -> None:
    bundle = _enrolled("B1", lab_creatinine("{ref:0}", 0.6, "2024-05-01T08:00:00Z"))
    bundle["madeUp"] = {"x": 1}
    assert "madeUp" in _diagnostics(_refused(served, bundle))


def test_a_string_over_1_mb_is_refused(served: Live) -> None:
    """R4 strings SHALL NOT exceed 1 MB (datatypes.html#string)."""
    bundle = _enrolled("BIG1")
    bundle["entry"][0]["resource"]["name"][0]["family"] = "x" * 2_000_000
    assert "1 MB" in _diagnostics(_refused(served, bundle))


# -- point 5: each batch entry is its own unit -------------------------------------------------
def _batch(mrn: str, second: dict[str, Any]) -> dict[str, Any]:
    """Patient + ResearchSubject, then ``second``, then a valid creatinine (a batch)."""
    bundle = _enrolled(mrn, second, lab_creatinine("{ref:0}", 0.6, "2024-05-01T08:00:00Z",
                                                   ident=f"{mrn}-ok"), kind="batch")
    return bundle


def test_an_entry_no_check_can_key_is_refused_alone(served: Live) -> None:
    """An identifier that is not a list was keyed before it was validated: 500 for the batch."""
    second = lab_creatinine("{ref:0}", 0.7, "2024-05-02T08:00:00Z")
    second["identifier"] = 5
    response = _post(served, _batch("BA1", second))
    assert response.status_code == 200, response.text[:1000]
    statuses = [e["response"]["status"].split()[0] for e in response.json()["entry"]]
    assert statuses == ["201", "201", "400", "201"]
    [row] = served.pipeline.audit_records(limit=1)
    assert row["action"] == "batch" and "1 error (400" in row["outcome"]
    assert len(row["resources"]) == 3


def test_a_fault_in_one_entry_is_that_entrys_own(served: Live,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault no input makes now (a stand-in for what broke the recomputation of entry 2):
    that entry is answered 500 and rolled back; the batch is 200, the others kept, audited."""
    from fhir_adapter.pipeline import writer

    real = writer.handle

    def handle(ctx: Any, request: Any, resolved: Any) -> Any:
        if request.index == 2:
            raise RuntimeError("a fault of the adapter")
        return real(ctx, request, resolved)

    monkeypatch.setattr(writer, "handle", handle)
    response = _post(served, _batch("BA2", lab_creatinine("{ref:0}", 0.7,
                                                          "2024-05-02T08:00:00Z", ident="BA2-x")))
    assert response.status_code == 200, response.text[:1000]
    entries = response.json()["entry"]
    assert [e["response"]["status"].split()[0] for e in entries] == ["201", "201", "500", "201"]
    assert entries[2]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert _rows(served)["measurement"] == 1  # entry 3's value; entry 2's was rolled back
    [row] = served.pipeline.audit_records(limit=1)
    assert row["action"] == "batch" and "1 error (500" in row["outcome"]
