"""Offline validation: base R4 structure, required bindings, invariants, the project's profiles."""

from __future__ import annotations

from fhir_adapter.validation.validator import (
    LAB_OBSERVATION,
    MSC_ADMINISTRATION,
    TRIAL_PATIENT,
    Validator,
    to_operation_outcome,
)

__all__ = [
    "LAB_OBSERVATION",
    "MSC_ADMINISTRATION",
    "TRIAL_PATIENT",
    "Validator",
    "to_operation_outcome",
]
