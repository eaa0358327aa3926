"""Trial results -> the FHIR R4 result Bundle and the tidy CSV table, pseudonymised (RESULTS.md)."""

from __future__ import annotations

from .bundle import (
    ENDPOINT_RESULT,
    PARTICIPANT_ENDPOINT,
    RESULT_STATUSES,
    BundleForm,
    ResultBuilder,
    ResultResource,
    result_id,
    summary_period,
    with_derived_from,
)
from .sources import pseudonymous_source
from .table import COLUMNS, to_csv
from .vocab import BASE, SYSTEMS, Pseudonymiser, content_hash, identifier_id

__all__ = [
    "BASE",
    "COLUMNS",
    "ENDPOINT_RESULT",
    "PARTICIPANT_ENDPOINT",
    "RESULT_STATUSES",
    "SYSTEMS",
    "BundleForm",
    "Pseudonymiser",
    "ResultBuilder",
    "ResultResource",
    "content_hash",
    "identifier_id",
    "pseudonymous_source",
    "result_id",
    "summary_period",
    "to_csv",
    "with_derived_from",
]
