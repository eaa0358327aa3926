"""The names of the result contract (RESULTS.md): systems, profiles, ids and FHIR numbers."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from fhir_adapter.scope import CANONICAL_BASE

__all__ = [
    "BASE",
    "DECIMAL_PLACES",
    "INTERPRETATION_DISPLAY",
    "OBSERVATION_CATEGORY",
    "OBSERVATION_CATEGORY_DISPLAY",
    "REMISSION_CODES",
    "SYSTEMS",
    "UCUM",
    "V3_INTERPRETATION",
    "V3_INTERPRETATION_DISPLAY",
    "Pseudonymiser",
    "content_hash",
    "decimal_text",
    "fhir_number",
    "fhir_time",
    "identifier_id",
    "is_fhir_id",
    "quantity",
]

BASE = CANONICAL_BASE
UCUM = "http://unitsofmeasure.org"
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

#: Systems of identifiers and codes, by short name.
SYSTEMS: dict[str, str] = {
    "endpoint-result": f"{BASE}/endpoint-result",
    "participant-endpoint": f"{BASE}/participant-endpoint",
    "subject": f"{BASE}/subject",
    "source-observation": f"{BASE}/source-observation",
    "schedule": f"{BASE}/schedule",
    "study-summary": f"{BASE}/study-summary",
    "trial-endpoint": f"{BASE}/CodeSystem/trial-endpoint",
    "trial-visit": f"{BASE}/CodeSystem/trial-visit",
    "endpoint-component": f"{BASE}/CodeSystem/endpoint-component",
    "remission": f"{BASE}/CodeSystem/remission",
    "egfr-method": f"{BASE}/CodeSystem/egfr-method",
    "visit-extension": f"{BASE}/StructureDefinition/trial-visit",
    "profile-endpoint-result": f"{BASE}/StructureDefinition/endpoint-result",
    "profile-participant-endpoint": f"{BASE}/StructureDefinition/participant-endpoint",
    "measure": f"{BASE}/Measure/study-summary",
}

REMISSION_CODES = frozenset({"complete", "partial", "none"})
#: The v3-ObservationInterpretation codes (terminology.hl7.org CodeSystem
#: v3-ObservationInterpretation, the codes of FHIR R4's observation-interpretation ValueSet that
#: grade a number against its reference range) with their displays: what a published source
#: Observation may carry of the interpretation it was sent with.
V3_INTERPRETATION_DISPLAY = {
    "<": "Off scale low",
    ">": "Off scale high",
    "A": "Abnormal",
    "AA": "Critical abnormal",
    "D": "Significant change down",
    "H": "High",
    "HH": "Critical high",
    "HU": "Significantly high",
    "L": "Low",
    "LL": "Critical low",
    "LU": "Significantly low",
    "N": "Normal",
    "U": "Significant change up",
}
#: The interpretations an endpoint result carries (RESULTS.md: creatinine at W2).
INTERPRETATION_DISPLAY = {code: V3_INTERPRETATION_DISPLAY[code] for code in ("D", "N", "U")}
#: FHIR R4 observation-category (terminology.hl7.org CodeSystem observation-category): code ->
#: display.
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
OBSERVATION_CATEGORY_DISPLAY = {
    "social-history": "Social History",
    "vital-signs": "Vital Signs",
    "imaging": "Imaging",
    "laboratory": "Laboratory",
    "procedure": "Procedure",
    "survey": "Survey",
    "exam": "Exam",
    "therapy": "Therapy",
    "activity": "Activity",
}

#: Derived values (ratios, percentages, computed eGFR) are published with at most this many
#: decimal places; measured values rarely have more.
DECIMAL_PLACES = 6
_QUANTUM = Decimal(1).scaleb(-DECIMAL_PLACES)
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, BASE)
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_VOLATILE_META = ("lastUpdated", "versionId")


def identifier_id(system: str, value: str) -> str:
    """A stable resource id derived from an identifier: the same identifier, the same id."""
    return str(uuid.uuid5(_NAMESPACE, f"{system}|{value}"))


def is_fhir_id(text: str) -> bool:
    return bool(_ID.match(text))


class Pseudonymiser:
    """Keyed-hash ids for the adapter's internal keys (``Observation/<adapter id>``).

    The adapter ids are known to the sending hospital (they are returned in ``Location``), so the
    published id is an HMAC of the key under a secret that never leaves the adapter: the same key
    gives the same id on every run, and nobody without the secret can link the two.
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the pseudonym key must have at least 16 bytes")
        self._secret = secret

    def id(self, key: str) -> str:
        digest = hmac.new(self._secret, key.encode("utf-8"), hashlib.sha256).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    def reference(self, key: str) -> str:
        """``Observation/<adapter id>`` -> ``Observation/<pseudonymous id>``."""
        resource_type = key.split("/", 1)[0]
        return f"{resource_type}/{self.id(key)}"


def _rounded(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError(f"not a finite number: {value}")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -DECIMAL_PLACES:
        value = value.quantize(_QUANTUM)
    return value


def fhir_number(value: Decimal | int) -> int | float:
    """A Decimal as a JSON number: an int when whole, else the nearest float (<= 6 places)."""
    if isinstance(value, int):
        return value
    value = _rounded(value)
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def decimal_text(value: Decimal | None) -> str:
    """A Decimal as plain text with '.' decimals and no exponent ('' for None)."""
    if value is None:
        return ""
    text = format(_rounded(value).normalize(), "f")
    return "0" if text in ("-0", "") else text


def fhir_time(at: datetime) -> str:
    """A FHIR dateTime/instant; the zone is required (a naive time is a programming error)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"time without a zone: {at.isoformat()}")
    return at.isoformat()


def quantity(value: Decimal | int, unit: str, comparator: str | None = None) -> dict[str, Any]:
    """A UCUM Quantity (``unit`` is the UCUM code)."""
    q: dict[str, Any] = {"value": fhir_number(value)}
    if comparator:
        q["comparator"] = comparator
    q.update({"unit": unit, "system": UCUM, "code": unit})
    return q


def content_hash(resource: dict[str, Any]) -> str:
    """SHA-256 of a resource's content, independent of key order, ``meta.lastUpdated``,
    ``meta.versionId`` and ``status``: equal hashes mean an unchanged result."""
    body = {k: v for k, v in resource.items() if k != "status"}
    meta = body.get("meta")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if k not in _VOLATILE_META}
        if meta:
            body["meta"] = meta
        else:
            body.pop("meta")
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
