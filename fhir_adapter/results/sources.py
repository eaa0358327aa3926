"""Source lab Observations, pseudonymised for a result Bundle (RESULTS.md, item 5).

A published source is built, not copied: from an allow-list of elements whose content the
adapter controls, as cumulus-etl de-identifies by allow-list. Codes and their displays come from
the analyte catalogue and the FHIR code systems the adapter knows, numbers and times from the
stored resource, units from UCUM (the unit the adapter read, never the sender's ``unit`` text).
Every other string of the stored resource (``code.text``, a coding's display, ``unit``,
``referenceRange.text``, ``interpretation.text``, ``method``, ``bodySite``, ``note``, components,
narrative, extensions) is the sender's free text and is left behind: it can name the person.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fhir_adapter.errors import AdapterError
from fhir_adapter.terminology import Terminology, quantity_unit
from fhir_adapter.trial.definitions import AcceptedCode

from .study import subject_ids
from .vocab import (
    OBSERVATION_CATEGORY,
    OBSERVATION_CATEGORY_DISPLAY,
    SYSTEMS,
    UCUM,
    V3_INTERPRETATION,
    V3_INTERPRETATION_DISPLAY,
    Pseudonymiser,
)

__all__ = ["KEPT_ELEMENTS", "pseudonymous_source"]

#: The only Observation elements a published source has (each rebuilt, see the module). The
#: rest (identifier, meta but its version, text, contained, extensions, basedOn, partOf,
#: encounter, performer, specimen, device, note, hasMember, derivedFrom, focus, method,
#: bodySite, component, value[x] other than a Quantity) can point at or describe the person or
#: the hospital, or is text the adapter cannot vouch for.
KEPT_ELEMENTS = (
    "status",
    "category",
    "code",
    "effectiveDateTime",
    "effectivePeriod",
    "effectiveInstant",
    "issued",
    "valueQuantity",
    "interpretation",
    "referenceRange",
)
#: Observation.status (FHIR R4 ValueSet observation-status).
_STATUSES = frozenset({"registered", "preliminary", "final", "amended", "corrected",
                       "cancelled", "entered-in-error", "unknown"})


def pseudonymous_source(
    key: str, stored: dict[str, Any], subject: str, pseudonyms: Pseudonymiser,
    terminology: Terminology,
) -> dict[str, Any]:
    """The stored Observation ``key`` as it may leave: a keyed-hash id and identifier, the
    pseudonymous Patient as subject, and the clinical content of ``KEPT_ELEMENTS`` as the
    adapter states it (the analyte's code from the catalogue, the value in its UCUM unit)."""
    source_id = pseudonyms.id(key)
    patient_id, _ = subject_ids(subject)
    resource: dict[str, Any] = {"resourceType": "Observation", "id": source_id}
    given = stored.get("meta")
    kept = {k: given[k] for k in ("versionId", "lastUpdated")
            if isinstance(given, dict) and isinstance(given.get(k), str)}
    if kept:  # the store's version of it (the store puts its own meta there)
        resource["meta"] = kept
    resource["identifier"] = [{"system": SYSTEMS["source-observation"], "value": source_id}]
    status = stored.get("status")
    resource["status"] = status if status in _STATUSES else "unknown"
    category = _known_codes(stored.get("category"), OBSERVATION_CATEGORY,
                            OBSERVATION_CATEGORY_DISPLAY)
    if category:
        resource["category"] = category
    found = _analyte(stored, terminology)
    resource["code"] = _code(found)
    resource["subject"] = {"reference": f"Patient/{patient_id}"}
    resource.update(_times(stored))
    if found is not None:
        accepted = found[1]
        quantity = stored.get("valueQuantity")
        value = _quantity(quantity, accepted, terminology) if isinstance(quantity, dict) else None
        if value is not None:
            resource["valueQuantity"] = value
        interpretation = _known_codes(stored.get("interpretation"), V3_INTERPRETATION,
                                      V3_INTERPRETATION_DISPLAY)
        if interpretation:
            resource["interpretation"] = interpretation
        default = value.get("code") if value else None
        ranges = _ranges(stored.get("referenceRange"), accepted, terminology, default)
        if ranges:
            resource["referenceRange"] = ranges
    return resource


def _analyte(stored: dict[str, Any], terminology: Terminology) -> tuple[Any, AcceptedCode] | None:
    try:
        return terminology.analyte_of(stored.get("code"))
    except AdapterError:  # two analytes: a stored source never does (it was refused)
        return None


def _code(found: tuple[Any, AcceptedCode] | None) -> dict[str, Any]:
    """The analyte as the catalogue names it: the code the sender's coding was read as (a
    site's local code becomes the catalogue code it maps to), the catalogue's display."""
    if found is None:
        return {"text": "unknown"}
    analyte, accepted = found
    coding = {"system": accepted.system, "code": accepted.code}
    if accepted.display:
        coding["display"] = accepted.display
    return {"coding": [coding], "text": analyte.name}


def _known_codes(given: object, system: str,
                 displays: dict[str, str]) -> list[dict[str, Any]]:
    """The codes of ``system`` among the sender's concepts that ``displays`` knows (R4
    observation categories, v3 interpretations), each with its display, in the table's order."""
    codes = {c.get("code") for concept in (given if isinstance(given, list) else [])
             if isinstance(concept, dict)
             for c in (concept.get("coding") or []) if isinstance(c, dict)
             and c.get("system") == system}
    return [{"coding": [{"system": system, "code": code, "display": display}]}
            for code, display in displays.items() if code in codes]


def _times(stored: dict[str, Any]) -> dict[str, Any]:
    """effective[x] and ``issued``: FHIR dateTimes and instants (checked as such when stored)."""
    out: dict[str, Any] = {}
    for name in ("effectiveDateTime", "effectiveInstant", "issued"):
        if isinstance(stored.get(name), str):
            out[name] = stored[name]
    period = stored.get("effectivePeriod")
    if isinstance(period, dict):
        kept = {k: period[k] for k in ("start", "end") if isinstance(period.get(k), str)}
        if kept:
            out["effectivePeriod"] = kept
    order = ("effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued")
    return {k: out[k] for k in order if k in out}


def _quantity(given: dict[str, Any], accepted: AcceptedCode, terminology: Terminology, *,
              element: str = "Observation.valueQuantity", default: str | None = None,
              comparator: bool = True) -> dict[str, Any] | None:
    """A Quantity as the adapter read it: the number, its comparator, and the UCUM unit the
    unit rule (terminology ``quantity_unit``) found, as ``unit`` and ``code``."""
    number = given.get("value")
    if isinstance(number, bool) or not isinstance(number, int | float | Decimal):
        return None
    out: dict[str, Any] = {"value": number}
    if comparator and given.get("comparator") in ("<", "<=", ">=", ">"):
        out["comparator"] = given["comparator"]
    try:
        unit, _ = quantity_unit(given, accepted, terminology.ucum_system, element=element,
                                default=default)
    except AdapterError:  # a unit the adapter did not read: the number alone would mislead
        return None
    out.update({"unit": unit, "system": UCUM, "code": unit})
    return out


def _ranges(given: object, accepted: AcceptedCode, terminology: Terminology,
            default: str | None) -> list[dict[str, Any]]:
    """Each reference range's ``low`` and ``high`` (a range the sender wrote as text only, or
    qualified by type, population or age, is text or codes the adapter does not read)."""
    out: list[dict[str, Any]] = []
    for index, reference_range in enumerate(given if isinstance(given, list) else []):
        if not isinstance(reference_range, dict):
            continue
        kept: dict[str, Any] = {}
        for bound in ("low", "high"):
            quantity = reference_range.get(bound)
            if isinstance(quantity, dict):
                value = _quantity(quantity, accepted, terminology, default=default,
                                  element=f"Observation.referenceRange[{index}].{bound}",
                                  comparator=False)
                if value is not None:
                    kept[bound] = value
        if kept:
            out.append(kept)
    return out
