"""The charts of a participant page: creatinine, eGFR, 24 h protein, ALT/AST x ULN, cytokines,
Treg; every value of the analyte is a point (in a window or not, amended or withdrawn)."""

from __future__ import annotations

from fhir_adapter.api.ui.charts import Band, Chart, Line, Point, Series
from fhir_adapter.trial.endpoints.liver import uln_of
from fhir_adapter.trial.model import Measurement
from fhir_adapter.workspace import ParticipantView, Snapshot
from fhir_adapter.workspace.grid import days

__all__ = ["charts", "value_href"]

GRADE_COLOURS = ("#F0E442", "#E69F00", "#D55E00", "#882255")


def value_href(snapshot: Snapshot, view: ParticipantView, m: Measurement) -> str:
    return f"/ui/participants/{view.subject}/values/{snapshot.source_id(m.source)}"


def _series(snapshot: Snapshot, view: ParticipantView, analyte: str, name: str,
            *, per_uln: bool = False) -> Series:
    assert view.day0 is not None
    series = Series(name)
    for m in sorted((m for m in view.record.measurements if m.analyte == analyte),
                    key=lambda m: m.at):
        y = m.value
        label = f"{m.comparator or ''}{snapshot.number(m.value)} {m.unit}"
        if per_uln:
            uln = uln_of(m, snapshot.study)
            if not uln:
                continue
            y = m.value / uln
            label += f" = {y:.2f} x ULN {snapshot.number(uln)}"
        offset = float(days(m.at - view.day0))
        series.points.append(Point(offset, float(y), value_href(snapshot, view, m),
                                   f"day {offset:g}: {label}", m.status))
    return series


def charts(snapshot: Snapshot, view: ParticipantView) -> list[Chart]:
    """The participant's trajectories over the year (none without Day 0)."""
    if view.day0 is None or view.assignment is None:
        return []
    study = snapshot.study
    out = [Chart("Serum creatinine", "mg/dL",
                 [_series(snapshot, view, "creatinine", "creatinine")])]
    egfr = Series("eGFR computed")
    for r in view.endpoints.visit_results:
        if r.analyte == "egfr-computed":
            offset = float(days(r.at - view.day0))
            source = r.sources[0] if r.sources else ""
            href = f"/ui/participants/{view.subject}/values/{snapshot.source_id(source)}"
            egfr.points.append(Point(offset, float(r.value), href,
                                     f"{r.visit} day {offset:g}: {snapshot.number(r.value)} "
                                     f"({r.egfr_method})"))
    out.append(Chart("eGFR computed by the adapter", "mL/min/1.73 m²", [egfr]))
    protein = [Line(float(study.complete_below_mg_per_day),
                    f"complete remission below {snapshot.number(study.complete_below_mg_per_day)}"
                    " mg/day")]
    baseline = view.assignment.baseline("urine-protein-24h")
    if baseline is not None:
        half = baseline.value * (100 - study.partial_reduction_pct) / 100
        protein.append(Line(float(half), f"partial remission: -{study.partial_reduction_pct} % "
                                         f"of baseline ({snapshot.number(half)} mg/day)"))
    out.append(Chart("24 h urine protein", "mg/day",
                     [_series(snapshot, view, "urine-protein-24h", "24 h protein")], protein))
    bounds = [float(b) for b in study.ctcae_normal]
    bands = [Band(low, high, f"CTCAE grade {g}", GRADE_COLOURS[g - 1])
             for g, (low, high) in enumerate(zip(bounds, [*bounds[1:], bounds[-1] * 2],
                                                 strict=True), start=1)]
    out.append(Chart("ALT and AST as multiples of the ULN", "x ULN",
                     [_series(snapshot, view, "alt", "ALT", per_uln=True),
                      _series(snapshot, view, "ast", "AST", per_uln=True)], bands=bands))
    out.append(Chart("IL-2 and IL-10", "pg/mL", [_series(snapshot, view, "il2", "IL-2"),
                                                  _series(snapshot, view, "il10", "IL-10")]))
    out.append(Chart("Treg, % of CD4+", "%", [_series(snapshot, view, "treg-pct-cd4", "Treg %")]))
    return out
