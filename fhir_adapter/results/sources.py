"""Source lab Observations, pseudonymised for a result Bundle (RESULTS.md, item 5)."""

from __future__ import annotations

from typing import Any

from .study import subject_ids
from .vocab import SYSTEMS, Pseudonymiser

__all__ = ["KEPT_ELEMENTS", "pseudonymous_source"]

#: The only Observation elements that leave the adapter. Everything else (id, identifier, meta,
#: text, contained, extensions, basedOn, partOf, encounter, performer, specimen, device, note,
#: hasMember, derivedFrom, focus) can point at or describe the person or the hospital.
KEPT_ELEMENTS = (
    "status",
    "category",
    "code",
    "effectiveDateTime",
    "effectivePeriod",
    "effectiveInstant",
    "issued",
    "valueQuantity",
    "valueCodeableConcept",
    "valueString",
    "valueBoolean",
    "valueInteger",
    "valueRange",
    "valueRatio",
    "dataAbsentReason",
    "interpretation",
    "bodySite",
    "method",
    "referenceRange",
    "component",
)
#: Inside kept elements: extensions and element ids are the hospital's, references lead to it.
_DROPPED_INSIDE = frozenset({"id", "extension", "modifierExtension", "reference", "identifier"})


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in _DROPPED_INSIDE}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def pseudonymous_source(
    key: str, stored: dict[str, Any], subject: str, pseudonyms: Pseudonymiser
) -> dict[str, Any]:
    """The stored Observation ``key`` as it may leave: a keyed-hash id and identifier, the
    pseudonymous Patient as subject, and only the clinical content of ``KEPT_ELEMENTS``."""
    source_id = pseudonyms.id(key)
    patient_id, _ = subject_ids(subject)
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": source_id,
    }
    given = stored.get("meta")
    kept = {k: given[k] for k in ("versionId", "lastUpdated")
            if isinstance(given, dict) and isinstance(given.get(k), str)}
    if kept:  # the store's version of it (the store puts its own meta there)
        resource["meta"] = kept
    resource["identifier"] = [{"system": SYSTEMS["source-observation"], "value": source_id}]
    for element in KEPT_ELEMENTS[:3]:
        if element in stored:
            resource[element] = _scrub(stored[element])
    resource["subject"] = {"reference": f"Patient/{patient_id}"}
    for element in KEPT_ELEMENTS[3:]:
        if element in stored:
            resource[element] = _scrub(stored[element])
    resource.setdefault("status", "unknown")
    resource.setdefault("code", {"text": "unknown"})
    return resource
