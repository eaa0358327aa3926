"""One handler per resource type: the enrollment gate, the mapping, what is persisted.

``HANDLERS`` is the registry, by resource type; a type it lacks is answered, not kept.
"""

from __future__ import annotations

from typing import Any

from fhir_adapter.pipeline.handlers.administration import administration
from fhir_adapter.pipeline.handlers.base import Context, Handler, not_kept, out_of_scope
from fhir_adapter.pipeline.handlers.enrollment import research_study, research_subject
from fhir_adapter.pipeline.handlers.observation import observation
from fhir_adapter.pipeline.handlers.patient import patient
from fhir_adapter.pipeline.handlers.specimen import specimen
from fhir_adapter.pipeline.handlers.versions import OLDER, older_than_kept
from fhir_adapter.pipeline.outcomes import EntryOutcome
from fhir_adapter.pipeline.requests import Request

__all__ = ["HANDLERS", "OLDER", "Context", "handle", "older_than_kept"]

HANDLERS: dict[str, Handler] = {
    "ResearchStudy": research_study,
    "ResearchSubject": research_subject,
    "Patient": patient,
    "Specimen": specimen,
    "MedicationAdministration": administration,
    "Observation": observation,
}


def handle(ctx: Context, request: Request, resolved: dict[str, Any]) -> EntryOutcome:
    """The handler of the request's type; an older version than the one kept is not kept."""
    if request.existing is not None and request.resource is not None:
        older = older_than_kept(request.resource, request.existing.current)
        if older is not None:
            return not_kept(request, OLDER, detail=older)
    return HANDLERS.get(request.resource_type, out_of_scope)(ctx, request, resolved)
