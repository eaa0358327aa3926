"""Reading a result Bundle in tests: find resources, resolve references like a consumer would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.results.result_fixtures import BASE


def resources(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type
    ]


def by_identifier(bundle: dict[str, Any], system: str, value: str) -> dict[str, Any]:
    found = [
        e["resource"]
        for e in bundle["entry"]
        if {"system": system, "value": value} in e["resource"].get("identifier", [])
    ]
    assert len(found) == 1, f"{system}|{value}: {len(found)} resources"
    return found[0]


def observation(bundle: dict[str, Any], key: str) -> dict[str, Any]:
    return by_identifier(bundle, f"{BASE}/endpoint-result", key)


def participant_observation(bundle: dict[str, Any], key: str) -> dict[str, Any]:
    return by_identifier(bundle, f"{BASE}/participant-endpoint", key)


def resolve(bundle: dict[str, Any], reference: str) -> dict[str, Any]:
    """The entry a reference points at: by fullUrl (urn:uuid, absolute), or a relative
    ``Type/id`` against the base of the collection's fullUrls (FHIR bundle resolution)."""
    for entry in bundle["entry"]:
        full_url = entry["fullUrl"]
        if full_url == reference:
            return entry["resource"]
        if not full_url.startswith("urn:") and full_url.endswith("/" + reference):
            base = full_url[: -len(reference) - 1]
            if f"{base}/{reference}" == full_url:
                return entry["resource"]
    raise AssertionError(f"{reference} does not resolve inside the Bundle")


def references(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every (path, reference string) in a resource."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield path, item
            else:
                yield from references(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from references(item, f"{path}[{i}]")


def coding(concept: dict[str, Any], system: str) -> dict[str, Any]:
    found = [c for c in concept["coding"] if c["system"] == system]
    assert len(found) == 1, concept
    return found[0]


def component_codes(resource: dict[str, Any]) -> list[str]:
    return [
        coding(c["code"], f"{BASE}/CodeSystem/endpoint-component")["code"]
        for c in resource.get("component", [])
    ]


def component(resource: dict[str, Any], code: str) -> dict[str, Any]:
    """The one component of that code (endpoint-component CodeSystem)."""
    codes = component_codes(resource)
    assert codes.count(code) == 1, (code, codes)
    return resource["component"][codes.index(code)]
