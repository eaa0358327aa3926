"""The CapabilityStatement says what works: each read, vread, search parameter, _include,
_revinclude and supportedProfile it lists is tried over HTTP and must answer as it says."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.api_harness import FHIR_JSON, Live, make_settings, make_tokens, sample_files, start


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    settings = make_settings(tmp_path_factory.mktemp("capability"))
    for live in start(settings, make_tokens(settings.tokens_file)):
        live.pipeline.ingest_paths(sample_files())
        yield live


def _get(live: Live, path: str, **params: str) -> httpx.Response:
    return httpx.get(live.base + path, params=params or None, timeout=120, headers={
        "Authorization": f"Bearer {live.research}", "Accept": FHIR_JSON})


def _value(resource: dict[str, Any], name: str, kind: str) -> str | None:
    """A value of search parameter ``name`` that ``resource`` itself matches."""
    if name == "_id":
        return str(resource["id"])
    if name == "_lastUpdated":
        return "eq" + resource["meta"]["lastUpdated"]
    if name == "identifier" and resource.get("identifier"):
        ident = resource["identifier"][0]
        return f"{ident['system']}|{ident['value']}"
    if name in ("subject", "patient"):
        ref = resource.get("subject") or resource.get("individual") or {}
        return ref.get("reference") if str(ref.get("reference", "")).startswith("Patient/") \
            else None
    if name in ("code", "category"):
        concept = resource.get(name)
        concept = concept[0] if isinstance(concept, list) and concept else concept
        codings = (concept or {}).get("coding") or []
        return f"{codings[0]['system']}|{codings[0]['code']}" if codings else None
    if name == "status":
        return resource.get("status")
    if name == "date":
        return resource.get("effectiveDateTime") or resource.get("date")
    if name == "url":
        return resource.get("url")
    raise AssertionError(f"no way to try {name} ({kind})")


def test_every_listed_interaction_and_parameter_works(loaded: Live) -> None:
    statement = _get(loaded, "/metadata").json()
    published: dict[str, list[dict[str, Any]]] = {}
    for entry in loaded.pipeline.result_bundle()["entry"]:
        published.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    tried = 0
    for listed in statement["rest"][0]["resource"]:
        kind = listed["type"]
        codes = {i["code"] for i in listed["interaction"]}
        if "read" in codes:
            samples = published.get(kind) or [
                _get(loaded, f"/{kind}").json()["entry"][0]["resource"]]
            for resource in samples[:3]:
                read = _get(loaded, f"/{kind}/{resource['id']}")
                assert read.status_code == 200, (kind, read.text[:300])
                tried += 1
                if "vread" in codes:
                    version = read.json()["meta"]["versionId"]
                    again = _get(loaded, f"/{kind}/{resource['id']}/_history/{version}")
                    assert again.status_code == 200, (kind, again.text[:300])
        for param in listed.get("searchParam", []):
            candidates = published.get(kind) or [
                e["resource"] for e in _get(loaded, f"/{kind}").json().get("entry", [])]
            pairs = [(r, _value(r, param["name"], param["type"])) for r in candidates]
            resource, value = next(((r, v) for r, v in pairs if v), (None, None))
            assert value is not None, f"{kind}?{param['name']}: nothing published to try"
            assert resource is not None
            narrowed = {"_id": resource["id"]} if param["name"] != "_id" else {}
            found = _get(loaded, f"/{kind}", **{param["name"]: value, **narrowed})
            assert found.status_code == 200, (kind, param["name"], found.text[:300])
            ids = [e["resource"]["id"] for e in found.json().get("entry", [])]
            assert ids == [resource["id"]], (kind, param["name"], value)
            tried += 1
        for element, mode in (("searchInclude", "_include"), ("searchRevInclude", "_revinclude")):
            for spec in listed.get(element, []):
                page = _get(loaded, f"/{kind}", **{mode: spec, "_count": "20"})
                assert page.status_code == 200, (kind, spec, page.text[:300])
                assert any(e["search"]["mode"] == "include" for e in page.json()["entry"]), spec
                tried += 1
        for url in listed.get("supportedProfile", []):
            found = _get(loaded, "/StructureDefinition", url=url).json()
            assert found["total"] == 1 and found["entry"][0]["resource"]["type"] == kind
            tried += 1
    assert {"PlanDefinition", "Provenance", "StructureDefinition", "ValueSet",
            "CodeSystem"} <= {r["type"] for r in statement["rest"][0]["resource"]}
    assert tried > 60


def test_an_unknown_definition_is_404(loaded: Live) -> None:
    assert _get(loaded, "/StructureDefinition/nothing").status_code == 404
    assert _get(loaded, "/ValueSet", name="x").status_code == 400
