"""The endpoint table per participant, as plain text lines (for the terminal)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from fhir_adapter.trial.model import ParticipantEndpoints, VisitResult

__all__ = ["HEADER", "endpoint_table"]

HEADER = ("endpoint", "analyte", "visit", "value", "baseline", "change", "change %", "fold",
          "other")
_WIDTHS = (18, 17, 5, 20, 10, 10, 9, 7, 0)


def endpoint_table(endpoints: Iterable[ParticipantEndpoints]) -> list[str]:
    """One block per participant: a row per visit-level result, then the participant-level
    results on one line each."""
    lines: list[str] = []
    for participant in endpoints:
        lines.append(f"{participant.subject}")
        lines.append("  " + _row(HEADER))
        for result in participant.visit_results:
            lines.append("  " + _row(_cells(result)))
        if not participant.visit_results:
            lines.append("  (no visit-level result)")
        for p in participant.participant_results:
            value = str(p.value).lower() if isinstance(p.value, bool) else str(p.value)
            lines.append(f"  {p.code}: {value}")
        lines.append("")
    return lines


def _row(cells: Iterable[str]) -> str:
    return " ".join(c.ljust(w) if w else c for c, w in zip(cells, _WIDTHS, strict=True)).rstrip()


def _number(value: Decimal | None) -> str:
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _cells(r: VisitResult) -> tuple[str, ...]:
    value = f"{r.comparator or ''}{_number(r.value)} {r.unit}"
    baseline = f"{r.baseline_comparator or ''}{_number(r.baseline)}"
    other = []
    if r.ctcae_grade is not None:
        other.append(f"grade {r.ctcae_grade} (ULN {_number(r.uln)})")
    if r.remission:
        other.append(r.remission)
    if r.protein_rate_bsa is not None:
        other.append(f"{_number(r.protein_rate_bsa)} mg/(m2.h)")
    if r.egfr_method:
        other.append(r.egfr_method)
    if r.interpretation:
        other.append(r.interpretation)
    return (r.endpoint, r.analyte, r.visit, value, baseline, _number(r.change),
            _number(r.percent_change), _number(r.fold_change), ", ".join(other))
