"""What a refused Observation was about (participant, analyte, time, reason), kept in its audit
row so that the data manager's schedule shows the refusal where the value would have counted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fhir_adapter.errors import AdapterError
from fhir_adapter.mapping import Mapper
from fhir_adapter.pipeline.requests import Request
from fhir_adapter.store import Unit, identifier_key, identity_keys
from fhir_adapter.store.keys import sender_id_key, uuid_key

__all__ = ["REFUSED", "describe"]

#: The key of a refusal's description among the audit row's resources.
REFUSED = "refused"
_URN = "urn:uuid:"


def describe(unit: Unit, mapper: Mapper, sender: str, request: Request,
             requests: Sequence[Request], error: AdapterError) -> dict[str, Any] | None:
    """The refusal of an Observation of a known participant, or None (another resource, or a
    patient the adapter cannot name: nothing about an unknown patient is kept)."""
    resource = request.resource
    if not isinstance(resource, dict) or resource.get("resourceType") != "Observation":
        return None
    subject = _subject(unit, sender, resource, requests)
    if subject is None:
        return None
    named = mapper.terminology.analytes(resource.get("code"))
    analyte = named[0][0].key if len(named) == 1 else ""
    period = resource.get("effectivePeriod")
    at = resource.get("effectiveDateTime") or \
        (period.get("start") if isinstance(period, dict) else None) or ""
    return {REFUSED: {"subject": subject, "analyte": analyte, "at": str(at),
                      "reason": f"{error.http_status} {error.message}"}}


def _subject(unit: Unit, sender: str, resource: dict[str, Any],
             requests: Sequence[Request]) -> str | None:
    named = resource.get("subject")  # a refused resource: any JSON may be here
    reference = named.get("reference") if isinstance(named, dict) else None
    if not isinstance(reference, str):
        return None
    patient_id: str | None = None
    identifiers: list[tuple[str, str]] = []
    if reference.startswith(_URN):
        patient = next((r.resource for r in requests if r.full_url == reference
                        and isinstance(r.resource, dict)), None)
        if patient is not None:
            stored = unit.find(identity_keys(patient, sender=sender, full_url=reference))
            patient_id = stored.id if stored else None
            given = patient.get("identifier")
            identifiers = [(str(i.get("system")), str(i.get("value")))
                           for i in (given if isinstance(given, list) else [])
                           if isinstance(i, dict)]
        else:
            key = uuid_key("Patient", reference)
            stored = unit.find([key]) if key else None
            patient_id = stored.id if stored else None
    elif reference.startswith("Patient?identifier="):
        system, _, value = reference.removeprefix("Patient?identifier=").partition("|")
        identifiers = [(system, value)]
        stored = unit.find([identifier_key("Patient", system, value)])
        patient_id = stored.id if stored else None
    elif reference.startswith("Patient/"):
        stored = unit.find([sender_id_key("Patient", sender, reference.removeprefix("Patient/"))])
        patient_id = stored.id if stored else None
    if patient_id is not None:
        found = unit.participant_for_patient(patient_id)
        if found is not None:
            return found.subject
    return unit.enrolled_subject(identifiers) if identifiers else None
