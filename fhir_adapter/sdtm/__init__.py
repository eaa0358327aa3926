"""CDISC SDTM from what the adapter keeps: DM, LB, EX, SV and TV as Dataset-JSON v1.1 (JSON or
NDJSON), SAS XPT v5 or CSV, with a machine-readable metadata file; always pseudonymised."""

from __future__ import annotations

from .export import ExportReport, export, sequence_of
from .formats import FORMATS
from .subject import READ_ELEMENTS, SubjectData
from .terms import LabTest, SdtmTerms
from .variables import DOMAINS, Domain, Variable

__all__ = [
    "DOMAINS",
    "FORMATS",
    "READ_ELEMENTS",
    "Domain",
    "ExportReport",
    "LabTest",
    "SdtmTerms",
    "SubjectData",
    "Variable",
    "export",
    "sequence_of",
]
