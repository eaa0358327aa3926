"""The trial's endpoints (TRIAL.md section 6): one participant at a time, then the study summary."""

from __future__ import annotations

from fhir_adapter.trial.endpoints.participant import compute
from fhir_adapter.trial.endpoints.summary import summarize

__all__ = ["compute", "summarize"]
