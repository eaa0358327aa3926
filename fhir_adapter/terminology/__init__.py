"""Terminology: code -> analyte (catalogue, then site maps), accepted units, the study product,
the plausibility of a value.

Below the stages (validation and mapping both ask it), above the trial model whose analyte
catalogue and study definition it reads.
"""

from __future__ import annotations

from fhir_adapter.terminology.codes import Found, Terminology, codings
from fhir_adapter.terminology.plausibility import (
    IMPLAUSIBLE,
    IMPOSSIBLE,
    Verdict,
    judge,
    outside_plausible,
)
from fhir_adapter.terminology.sites import EQUIVALENT, SiteCodeMaps, SiteMapping
from fhir_adapter.terminology.units import convert, quantity_unit

__all__ = [
    "EQUIVALENT",
    "IMPLAUSIBLE",
    "IMPOSSIBLE",
    "Found",
    "SiteCodeMaps",
    "SiteMapping",
    "Terminology",
    "Verdict",
    "codings",
    "convert",
    "judge",
    "outside_plausible",
    "quantity_unit",
]
