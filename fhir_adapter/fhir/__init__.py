"""FHIR mechanics with no trial meaning: reading, parsing, references, OperationOutcome."""

from __future__ import annotations

from fhir_adapter.fhir.outcome import error_outcome, informational, operation_outcome
from fhir_adapter.fhir.parse import fhirpath_of, model_class, parse_resource, structure_issues
from fhir_adapter.fhir.primitives import FhirDateTime, parse_datetime, to_decimal
from fhir_adapter.fhir.reading import (
    BundleEntry,
    InputFile,
    bundle_entries,
    is_ndjson_file,
    iter_ndjson,
    load_json,
    loads,
    ndjson_lines,
    read_path,
)
from fhir_adapter.fhir.references import (
    ConditionalReference,
    FoundReference,
    iter_references,
    parse_conditional,
    rewrite_references,
    split_token,
    unresolved_references,
)

__all__ = [
    "BundleEntry",
    "ConditionalReference",
    "FhirDateTime",
    "FoundReference",
    "InputFile",
    "bundle_entries",
    "error_outcome",
    "fhirpath_of",
    "informational",
    "is_ndjson_file",
    "iter_ndjson",
    "ndjson_lines",
    "iter_references",
    "load_json",
    "loads",
    "model_class",
    "operation_outcome",
    "parse_conditional",
    "parse_datetime",
    "parse_resource",
    "read_path",
    "rewrite_references",
    "split_token",
    "structure_issues",
    "to_decimal",
    "unresolved_references",
]
