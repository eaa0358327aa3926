"""Searches over real HTTP, as research servers make them with fhirpy and httpx: pages followed
to the end (a keyset cursor: writes between pages neither repeat nor skip an entry), exact
totals, _summary=count, _elements, _total, _sort, date/category/status/patient, _include and
_revinclude, unknown parameters (400, or ignored under handling=lenient)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fhirpy import SyncFHIRClient

from fhir_adapter.api.searchset import DEFAULT_COUNT, MAX_COUNT
from tests.api.api_harness import FHIR_JSON, Live, make_settings, make_tokens, sample_files, start

SUBSETTED = "SUBSETTED"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    settings = make_settings(tmp_path_factory.mktemp("paging"))
    for live in start(settings, make_tokens(settings.tokens_file)):
        summary = live.pipeline.ingest_paths(sample_files())
        assert not summary.errors
        yield live


def _published(live: Live, resource_type: str) -> list[dict[str, Any]]:
    """What the whole result Bundle holds of a type: the expected answers are worked out
    from it here, by hand, not by the search code."""
    return [e["resource"] for e in live.pipeline.result_bundle()["entry"]
            if e["resource"]["resourceType"] == resource_type]


def _get(live: Live, url: str, **params: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {live.research}", "Accept": FHIR_JSON}
    response = httpx.get(url if url.startswith("http") else live.base + url, params=params or None,
                         headers=headers, timeout=120)
    assert response.status_code == 200, response.text[:1000]
    return dict(response.json())


def _walk(live: Live, first: dict[str, Any]) -> Iterator[dict[str, Any]]:
    page: dict[str, Any] | None = first
    while page is not None:
        yield page
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        page = _get(live, following[0]) if following else None


def _ids(page: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in page.get("entry", []) if e["search"]["mode"] == mode]


def test_pages_of_count_are_followed_to_the_end(loaded: Live) -> None:
    every = {o["id"] for o in _published(loaded, "Observation")}
    first = _get(loaded, "/Observation", _count=100)
    assert first["total"] == len(every) > 1000
    assert len(_ids(first)) == 100
    pages = list(_walk(loaded, first))
    seen = [i for page in pages for i in _ids(page)]
    assert len(pages) == -(-len(every) // 100)
    assert len(seen) == len(set(seen)) and set(seen) == every
    assert all(page["total"] == len(every) for page in pages)
    second = pages[1]
    back = [link["url"] for link in second["link"] if link["relation"] == "previous"]
    assert _ids(_get(loaded, back[0])) == _ids(first)
    default = _get(loaded, "/Observation")
    assert len(_ids(default)) == DEFAULT_COUNT
    assert len(_ids(_get(loaded, "/Observation", _count=100000))) == MAX_COUNT


def test_fhirpy_limit_and_iteration(loaded: Live) -> None:
    research = SyncFHIRClient(loaded.base, authorization=f"Bearer {loaded.research}")
    every = {o["id"] for o in _published(loaded, "Observation")}
    assert len(research.resources("Observation").limit(10).fetch()) == 10
    walked = [o["id"] for o in research.resources("Observation").limit(250).fetch_all()]
    assert len(walked) == len(set(walked)) == len(every)
    assert research.resources("Observation").count() == len(every)
    creatinine = [o for o in _published(loaded, "Observation")
                  if any(c.get("code") == "2160-0" for c in o["code"].get("coding", []))]
    assert research.resources("Observation").search(code="2160-0").count() == len(creatinine)


def test_a_write_between_pages_neither_repeats_nor_skips(loaded: Live) -> None:
    published = _published(loaded, "Observation")
    before = {o["id"] for o in published}
    versions = {(o["id"], o["meta"]["versionId"]) for o in published}
    first = _get(loaded, "/Observation", _count=200)
    _send_a_new_lab_value(loaded)
    republished = _published(loaded, "Observation")
    after = {o["id"] for o in republished}
    # the write changed what is published (a result amended, or new ones)
    assert {(o["id"], o["meta"]["versionId"]) for o in republished} != versions
    seen = [i for page in _walk(loaded, first) for i in _ids(page)]
    assert len(seen) == len(set(seen))
    assert before - {o for o in before if o not in after} <= set(seen)


def _send_a_new_lab_value(live: Live) -> None:
    """A correction of FSGS-01's last creatinine, sent as the hospital would."""
    path = next(p for p in sample_files() if "FSGS-01" in p.name)
    bundle = json.loads(path.read_bytes())
    patient = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    labs = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
            and e["resource"]["code"]["coding"][0]["code"] == "2160-0"]
    obs = copy.deepcopy(labs[-1]["resource"])
    obs["valueQuantity"]["value"] = 0.77
    obs["status"] = "corrected"
    obs["issued"] = datetime.now(UTC).isoformat()
    obs["subject"] = {"identifier": {k: v for k, v in patient["resource"]["identifier"][0].items()
                                     if k in ("system", "value")}}
    with live.client(live.ehr) as client:
        answer = client.post("/Observation", json=obs, headers={"Content-Type": FHIR_JSON})
    assert answer.status_code in (200, 201), answer.text


def test_summary_count_total_none_and_elements(loaded: Live) -> None:
    count = len(_published(loaded, "Observation"))
    only = _get(loaded, "/Observation", _summary="count")
    assert only["total"] == count and "entry" not in only
    assert "total" not in _get(loaded, "/Observation", _total="none", _count=5)
    subset = _get(loaded, "/Observation", _elements="code,subject", _count=5)
    for entry in subset["entry"]:
        resource = entry["resource"]
        assert set(resource) <= {"resourceType", "id", "meta", "code", "subject"}
        assert SUBSETTED in [t["code"] for t in resource["meta"]["tag"]]


def _effective(resource: dict[str, Any]) -> datetime:
    text = resource["effectiveDateTime"]
    if "T" not in text:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    return datetime.fromisoformat(text)


def test_date_with_prefixes_category_status_patient_and_sort(loaded: Live) -> None:
    observations = [o for o in _published(loaded, "Observation") if "effectiveDateTime" in o]
    moment = sorted(_effective(o) for o in observations)[len(observations) // 2]
    stamp = moment.isoformat()
    later = [o for o in observations if _effective(o) > moment]
    found = _get(loaded, "/Observation", date=f"gt{stamp}", _summary="count")
    assert found["total"] == len(later)
    at_or_before = [o for o in observations if _effective(o) <= moment]
    assert _get(loaded, "/Observation", date=f"le{stamp}", _summary="count")["total"] == \
        len(at_or_before)
    labs = [o for o in _published(loaded, "Observation")
            if any(c.get("code") == "laboratory" for cat in o.get("category", [])
                   for c in cat.get("coding", []))]
    assert _get(loaded, "/Observation", category="laboratory", _summary="count")["total"] == \
        len(labs) > 0
    amended = [o for o in _published(loaded, "Observation") if o["status"] == "amended"]
    assert _get(loaded, "/Observation", status="amended", _summary="count")["total"] == \
        len(amended)
    patient = _published(loaded, "Patient")[0]["id"]
    mine = [o for o in _published(loaded, "Observation")
            if o["subject"]["reference"] == f"Patient/{patient}"]
    assert _get(loaded, "/Observation", patient=patient, _summary="count")["total"] == len(mine)
    newest = _get(loaded, "/Observation", patient=patient, _sort="-date", _count=500)
    times = [_effective(e["resource"]) for e in newest["entry"]
             if "effectiveDateTime" in e["resource"]]
    assert times == sorted(times, reverse=True) and len(times) > 1


def test_include_and_revinclude(loaded: Live) -> None:
    patient = _published(loaded, "Patient")[0]["id"]
    page = _get(loaded, "/Observation", patient=patient, _include="Observation:subject",
                _count=5)
    assert _ids(page, "include") == [patient]
    derived = _get(loaded, "/Observation", patient=patient, _count=500,
                   _include="Observation:derived-from")
    matches = set(_ids(derived))
    wanted = {r["reference"].split("/")[1] for e in derived["entry"]
              if e["search"]["mode"] == "match" for r in e["resource"].get("derivedFrom", [])}
    assert set(_ids(derived, "include")) == wanted - matches
    back = _get(loaded, "/Patient", _id=patient, _revinclude="Observation:subject")
    mine = {o["id"] for o in _published(loaded, "Observation")
            if o["subject"]["reference"] == f"Patient/{patient}"}
    assert _ids(back) == [patient] and set(_ids(back, "include")) == mine


def test_unknown_parameters_are_400_unless_lenient(loaded: Live) -> None:
    headers = {"Authorization": f"Bearer {loaded.research}"}
    strict = httpx.get(f"{loaded.base}/Observation", params={"foo": "1", "bar": "2"},
                       headers=headers)
    assert strict.status_code == 400
    assert [i["expression"] for i in strict.json()["issue"]] == [["foo"], ["bar"]]
    on_patient = httpx.get(f"{loaded.base}/Patient", params={"code": "2160-0"}, headers=headers)
    assert on_patient.status_code == 400  # code is no search parameter of Patient
    lenient = httpx.get(f"{loaded.base}/Observation", params={"foo": "1", "_count": "3"},
                        headers={**headers, "Prefer": "handling=lenient"})
    assert lenient.status_code == 200
    body = lenient.json()
    assert body["total"] == len(_published(loaded, "Observation"))
    [outcome] = [e["resource"] for e in body["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome["issue"][0]["expression"] == ["foo"]
    bad = httpx.get(f"{loaded.base}/Observation", params={"_count": "ten"}, headers=headers)
    assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["_count"]
