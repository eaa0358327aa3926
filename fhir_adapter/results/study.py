"""The ResearchStudy, its schedule (PlanDefinition) and the pseudonymous Patient/ResearchSubject."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fhir_adapter.trial.definitions import StudyDefinition, VisitDef
from fhir_adapter.trial.model import Participant
from fhir_adapter.trial.visits import BASELINE, DAY0

from .vocab import BASE, SYSTEMS, UCUM, identifier_id, is_fhir_id

__all__ = [
    "SUBJECT_STATUSES",
    "patient",
    "research_study",
    "research_subject",
    "schedule",
    "study_id",
    "subject_ids",
]

PHASE_SYSTEM = "http://terminology.hl7.org/CodeSystem/research-study-phase"
PURPOSE_SYSTEM = "http://terminology.hl7.org/CodeSystem/research-study-prim-purp-type"
PLAN_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/plan-definition-type"
GENDERS = frozenset({"male", "female", "other", "unknown"})
#: ResearchSubject.status codes of R4.
SUBJECT_STATUSES = frozenset(
    {
        "candidate", "eligible", "follow-up", "ineligible", "not-registered", "off-study",
        "on-study", "on-study-intervention", "on-study-observation", "pending-on-study",
        "potential-candidate", "screening", "withdrawn",
    }
)  # fmt: skip


def study_id(study: StudyDefinition) -> str:
    """The ResearchStudy id: the study's own id when it is a valid FHIR id."""
    if is_fhir_id(study.id):
        return study.id
    return identifier_id(study.identifier_system, study.identifier_value)


def schedule_id(study: StudyDefinition) -> str:
    return identifier_id(SYSTEMS["schedule"], study.id)


def subject_ids(subject: str) -> tuple[str, str]:
    """The ids of a participant's pseudonymous Patient and ResearchSubject."""
    system = SYSTEMS["subject"]
    return identifier_id(system, subject), identifier_id(f"{system}#research-subject", subject)


def research_study(study: StudyDefinition) -> dict[str, Any]:
    """The adapter's ResearchStudy (TRIAL.md section 1), its schedule in ``protocol``."""
    resource: dict[str, Any] = {"resourceType": "ResearchStudy", "id": study_id(study)}
    contained: list[dict[str, Any]] = []
    if study.sponsor:
        contained.append({"resourceType": "Organization", "id": "sponsor", "name": study.sponsor})
    if study.site:
        contained.append({"resourceType": "Location", "id": "site", "name": study.site})
    if study.enrollment is not None:
        contained.append(
            {
                "resourceType": "Group",
                "id": "enrollment",
                "type": "person",
                "actual": False,
                "quantity": study.enrollment,
                "name": "planned enrollment",
            }
        )
    if contained:
        resource["contained"] = contained
    resource["identifier"] = [{"system": study.identifier_system, "value": study.identifier_value}]
    resource["title"] = study.title
    resource["protocol"] = [{"reference": f"PlanDefinition/{schedule_id(study)}"}]
    resource["status"] = study.status
    resource["primaryPurposeType"] = {"coding": [{"system": PURPOSE_SYSTEM, "code": "treatment"}]}
    if study.phase:
        resource["phase"] = {"coding": [{"system": PHASE_SYSTEM, "code": study.phase}]}
    if study.enrollment is not None:
        resource["enrollment"] = [{"reference": "#enrollment"}]
    if study.sponsor:
        resource["sponsor"] = {"reference": "#sponsor", "display": study.sponsor}
    if study.site:
        resource["site"] = [{"reference": "#site", "display": study.site}]
    return resource


def _span(amount: timedelta, unit: str) -> dict[str, Any]:
    seconds = amount.total_seconds()
    value = seconds / 3600 if unit == "h" else seconds / 86400
    number = int(value) if value == int(value) else value
    return {"value": number, "unit": unit, "system": UCUM, "code": unit}


def _visit_action(visit: VisitDef) -> dict[str, Any]:
    low, high = abs(visit.start), abs(visit.end)
    nominal = _span(visit.nominal, visit.unit)["value"]
    return {
        "id": visit.code,
        "title": visit.code,
        "description": (
            f"nominal {nominal} {visit.unit} after Day 0; window "
            f"{_span(low, visit.unit)['value']} to {_span(high, visit.unit)['value']} "
            f"{visit.unit} inclusive"
        ),
        "code": [{"coding": [{"system": SYSTEMS["trial-visit"], "code": visit.code}]}],
        "relatedAction": [
            {
                "actionId": DAY0,
                "relationship": "after-start",
                "offsetRange": {"low": _span(low, visit.unit), "high": _span(high, visit.unit)},
            }
        ],
    }


def schedule(study: StudyDefinition) -> dict[str, Any]:
    """The visits and windows of the study definition as a PlanDefinition (TRIAL.md section 3)."""
    baseline_days = abs(study.baseline_start)
    actions: list[dict[str, Any]] = [
        {
            "id": DAY0,
            "title": "Day 0",
            "description": "infusion of the study product; every offset counts from its start",
            "code": [
                {
                    "coding": [
                        {
                            "system": study.product_system,
                            "code": study.product_code,
                            "display": study.product_display,
                        }
                    ]
                }
            ],
        },
        {
            "id": BASELINE,
            "title": BASELINE,
            "description": (
                f"baseline: the last value in the {_span(baseline_days, 'd')['value']} d "
                "before Day 0, strictly before it"
            ),
            "code": [{"coding": [{"system": SYSTEMS["trial-visit"], "code": BASELINE}]}],
            "relatedAction": [
                {
                    "actionId": DAY0,
                    "relationship": "before-start",
                    "offsetRange": {
                        "low": _span(timedelta(0), "d"),
                        "high": _span(baseline_days, "d"),
                    },
                }
            ],
        },
    ]
    actions.extend(_visit_action(v) for v in study.visits)
    return {
        "resourceType": "PlanDefinition",
        "id": schedule_id(study),
        "url": f"{BASE}/PlanDefinition/schedule-{study.id}",
        "identifier": [{"system": SYSTEMS["schedule"], "value": study.id}],
        "name": "VisitSchedule",
        "title": f"Visit schedule of {study.id}",
        "type": {"coding": [{"system": PLAN_TYPE_SYSTEM, "code": "clinical-protocol"}]},
        "status": "active",
        "action": actions,
    }


def patient(participant: Participant) -> dict[str, Any]:
    """The pseudonymous Patient: the subject code and the gender, nothing else."""
    patient_id, _ = subject_ids(participant.subject)
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [{"system": SYSTEMS["subject"], "value": participant.subject}],
    }
    if participant.sex in GENDERS:
        resource["gender"] = participant.sex
    return resource


def research_subject(
    study: StudyDefinition, participant: Participant, status: str = "on-study"
) -> dict[str, Any]:
    """The participant's ResearchSubject: same identifier, ``study`` and ``individual`` set."""
    patient_id, subject_id = subject_ids(participant.subject)
    if status not in SUBJECT_STATUSES:
        raise ValueError(f"not a ResearchSubject status: {status!r}")
    return {
        "resourceType": "ResearchSubject",
        "id": subject_id,
        "identifier": [{"system": SYSTEMS["subject"], "value": participant.subject}],
        "status": status,
        "study": {"reference": f"ResearchStudy/{study_id(study)}"},
        "individual": {"reference": f"Patient/{patient_id}"},
    }
