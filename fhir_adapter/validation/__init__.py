"""Offline validation: base R4 structure, required bindings, invariants, the project's profiles."""

from __future__ import annotations

from fhir_adapter.validation.bundles import BUNDLE_SOURCE, LOCAL_REFERENCE
from fhir_adapter.validation.core import BASE_SD
from fhir_adapter.validation.validator import (
    BASE_R4,
    LAB_OBSERVATION,
    MSC_ADMINISTRATION,
    TRIAL_PATIENT,
    Validator,
    to_operation_outcome,
)

__all__ = [
    "BASE_R4",
    "BASE_SD",
    "BUNDLE_SOURCE",
    "LOCAL_REFERENCE",
    "LAB_OBSERVATION",
    "MSC_ADMINISTRATION",
    "TRIAL_PATIENT",
    "Validator",
    "to_operation_outcome",
]
