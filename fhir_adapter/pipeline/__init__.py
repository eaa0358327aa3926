"""The orchestrator: parse, validate, gate, map, persist, recompute what the data touched."""

from __future__ import annotations

from fhir_adapter.pipeline.orchestrator import Pipeline
from fhir_adapter.pipeline.outcomes import BundleOutcome, EntryOutcome, LoadSummary, TypeCounts

__all__ = ["BundleOutcome", "EntryOutcome", "LoadSummary", "Pipeline", "TypeCounts"]
