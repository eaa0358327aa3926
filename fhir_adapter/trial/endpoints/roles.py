"""The analytes (catalogue keys of mappings/analytes.toml) and codes that endpoint rules name."""

from __future__ import annotations

__all__ = [
    "BEST_RESPONSE",
    "CREATININE",
    "EGFR_COMPUTED",
    "HEIGHT",
    "NO_INFUSION",
    "UPCR",
    "WEIGHT",
    "per_analyte",
    "per_visit",
]

# Analytes a rule reads besides the ones its endpoint lists in mappings/study.toml.
CREATININE = "creatinine"  # the input of the computed eGFR
EGFR_COMPUTED = "egfr-computed"  # computed by the adapter, never read from input
HEIGHT = "height"
WEIGHT = "weight"
UPCR = "upcr"  # shown beside the 24 h urine protein

# Participant-level codes (RESULTS.md, CodeSystem trial-endpoint) not tied to a visit.
NO_INFUSION = "no-infusion"
BEST_RESPONSE = "proteinuria-best-response"


def per_visit(stem: str, visit: str) -> str:
    """A participant-level code tied to a visit: ``creatinine-category`` + W2 -> ``...-w2``."""
    return f"{stem}-{visit.lower()}"


def per_analyte(stem: str, analyte: str) -> str:
    """A participant-level code tied to an analyte: ``max-ctcae-grade`` + alt -> ``...-alt``."""
    return f"{stem}-{analyte}"
