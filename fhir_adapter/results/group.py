"""The study's Group: its participants' pseudonymous Patients, the target of Group/$export."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir_adapter.trial.definitions import StudyDefinition

from .study import study_id, subject_ids

__all__ = ["study_group"]


def study_group(study: StudyDefinition, subjects: Iterable[str]) -> dict[str, Any]:
    """A Group (``actual``, of persons) with the study's id, one member per participant."""
    members = [{"entity": {"reference": f"Patient/{subject_ids(s)[0]}"}}
               for s in sorted(set(subjects))]
    group: dict[str, Any] = {
        "resourceType": "Group",
        "id": study_id(study),
        "type": "person",
        "actual": True,
        "quantity": len(members),
        "member": members,
    }
    group["identifier"] = [{"system": study.identifier_system, "value": study.identifier_value}]
    return group
