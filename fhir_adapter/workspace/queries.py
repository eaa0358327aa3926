"""The queries list: everything that needs a data manager's action, safety signals first.

Kinds (each query names the participant, analyte, time, reason and the source where it has
them): ``not-computed`` (a participant whose results could not be recomputed, with the reason:
they stay as they were until its data change), ``safety`` (ALT/AST CTCAE grade at or above the
threshold at any time after Day 0; creatinine rise from baseline at or above the threshold),
``out-of-window`` (a value after Day 0 in no visit window), ``missed`` (a scheduled visit whose
window passed without a value, one query per participant and visit naming the analytes),
``preliminary`` (a result never finalised), ``implausible`` (outside the plausible range of
``mappings/analytes.toml``), ``refused`` (a call or entries refused, from the audit) and
``not-enrolled`` (data received for patients who are not participants: counts only, no
identity).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Context, Decimal

from fhir_adapter.terminology import outside_plausible
from fhir_adapter.trial.endpoints.common import HUNDRED
from fhir_adapter.trial.endpoints.liver import ctcae_grade, uln_of
from fhir_adapter.trial.endpoints.roles import CREATININE
from fhir_adapter.trial.visits import BASELINE
from fhir_adapter.workspace.grid import days, nearest_visit, scheduled
from fhir_adapter.workspace.rules import QueryRules
from fhir_adapter.workspace.snapshot import ParticipantView, Snapshot

__all__ = ["KINDS", "Query", "queries"]

#: kind -> its title, in the order the list shows them.
KINDS: dict[str, str] = {
    "not-computed": "results not computed",
    "safety": "safety signal",
    "out-of-window": "value outside every visit window",
    "missed": "visit missed",
    "preliminary": "preliminary result never finalised",
    "implausible": "implausible value",
    "refused": "refused by the adapter",
    "not-enrolled": "data for patients who are not enrolled",
}
LIVER = ("alt", "ast")
_PRELIMINARY = frozenset({"preliminary", "registered"})
_NOT_KEPT = re.compile(r"(\d+) not kept \(([^)]*)\)")
_ERRORS = re.compile(r"(\d+) errors? \(")


@dataclass(frozen=True, slots=True)
class Query:
    kind: str
    reason: str
    subject: str = ""
    analyte: str = ""
    visit: str = ""
    at: datetime | None = None
    source: str = ""  # pseudonymous id of the source Observation, or the audit sender

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "subject": self.subject, "analyte": self.analyte,
                "visit": self.visit, "time": self.at.isoformat() if self.at else "",
                "reason": self.reason, "source": self.source}


def queries(snapshot: Snapshot, rules: QueryRules) -> list[Query]:
    """Every query, by kind (in the order of ``KINDS``), then participant and time."""
    found: list[Query] = []
    plan = scheduled(snapshot)
    for view in snapshot.participants:
        try:
            found += _safety(snapshot, view, rules) + _outside(snapshot, view) + \
                _missed(snapshot, view, plan) + _values(snapshot, view)
        except (ArithmeticError, ValueError) as exc:  # values beyond the arithmetic
            view.fault = view.fault or f"results not computed: {type(exc).__name__}"
        if view.fault:
            found.append(Query("not-computed", view.fault, view.subject))
    found += _audit(snapshot)
    zone = snapshot.study.timezone
    found = [replace(q, at=q.at.astimezone(zone)) if q.at else q for q in found]
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(found, key=lambda q: (order[q.kind], q.subject, q.at or datetime.min.replace(
        tzinfo=snapshot.study.timezone), q.analyte))


def _safety(snapshot: Snapshot, view: ParticipantView, rules: QueryRules) -> list[Query]:
    assignment = view.assignment
    if assignment is None:
        return []
    out = []
    study = snapshot.study
    for analyte in LIVER:
        baseline = assignment.baseline(analyte)
        for p in assignment.after_day0(analyte):
            m = p.measurement
            uln = uln_of(m, study)
            if uln is None:
                continue
            grade = ctcae_grade(m.value, uln, baseline.value if baseline else None,
                                uln_of(baseline, study) if baseline else None, study)
            if grade >= rules.ctcae_grade_at_least:
                ref = (f"baseline {snapshot.number(baseline.value)}" if baseline
                       and baseline.value > (uln_of(baseline, study) or 0) else
                       f"ULN {snapshot.number(uln)}")
                out.append(Query("safety", f"{analyte.upper()} {snapshot.number(m.value)} "
                                 f"{m.unit}: CTCAE grade {grade} ({ref})", view.subject,
                                 analyte, p.window or "", m.at, snapshot.source_id(m.source)))
    baseline = assignment.baseline(CREATININE)
    if baseline is not None and not baseline.censored and baseline.value > 0:
        for p in assignment.after_day0(CREATININE):
            m = p.measurement
            if m.censored:
                continue
            rise = HUNDRED * (m.value - baseline.value) / baseline.value
            if rise >= rules.creatinine_rise_pct:
                out.append(Query("safety", f"creatinine {snapshot.number(m.value)} {m.unit}: "
                                 f"+{_tenths(rise)} % from baseline "
                                 f"{snapshot.number(baseline.value)}", view.subject,
                                 CREATININE, p.window or "", m.at,
                                 snapshot.source_id(m.source)))
    return out


def _tenths(value: Decimal) -> Decimal:
    """To one place, however large (the default context holds 28 digits only)."""
    return value.quantize(Decimal("0.1"), context=Context(prec=max(28, value.adjusted() + 3)))


def _outside(snapshot: Snapshot, view: ParticipantView) -> list[Query]:
    assignment = view.assignment
    if assignment is None:
        return []
    out = []
    for analyte, placed in assignment.placements.items():
        for p in placed:
            if p.window is not None or p.offset < timedelta(0):
                continue
            near = nearest_visit(snapshot, p.offset)
            out.append(Query("out-of-window", f"day {days(p.offset)}, in no window; nearest "
                             f"visit {near}", view.subject, analyte, near, p.measurement.at,
                             snapshot.source_id(p.measurement.source)))
    return out


def _missed(snapshot: Snapshot, view: ParticipantView,
            plan: dict[str, frozenset[str]]) -> list[Query]:
    assignment = view.assignment
    if assignment is None:
        return []
    by_visit: dict[str, list[str]] = {}
    for analyte, visits in assignment.missed.items():
        for visit in visits:
            by_visit.setdefault(visit, []).append(analyte)
    out = []
    for v in snapshot.study.visits:
        names = by_visit.get(v.code)
        if not names:
            continue
        ordered = [a for a in snapshot.catalogue.analytes if a in names]
        whole = set(ordered) >= {a for a in plan.get(v.code, ()) if a in assignment.placements}
        what = "no value of any scheduled analyte" if whole else "no value of " + \
            ", ".join(ordered)
        end = assignment.day0 + v.end
        closed = f"{v.end.total_seconds() / 3600:.0f} h" if v.hour_based else \
            f"day {days(v.end):.0f}"
        out.append(Query("missed", f"{v.code} window closed at {closed}: {what}",
                         view.subject, ",".join(ordered), v.code, end))
    return out


def _values(snapshot: Snapshot, view: ParticipantView) -> list[Query]:
    out = []
    for m in view.record.measurements:
        if m.status in _PRELIMINARY:
            out.append(Query("preliminary", f"status {m.status}: not counted until final",
                             view.subject, m.analyte, _visit_of(snapshot, view, m.at), m.at,
                             snapshot.source_id(m.source)))
        analyte = snapshot.catalogue.analytes.get(m.analyte)
        if analyte is not None and analyte.plausible is not None and m.status not in (
                "entered-in-error", "cancelled") and outside_plausible(
                analyte, m.value, m.comparator):
            low, high = (snapshot.number(b) for b in analyte.plausible)
            out.append(Query("implausible", f"{snapshot.number(m.value)} {m.unit} is outside "
                             f"the plausible range {low} to {high}", view.subject, m.analyte,
                             _visit_of(snapshot, view, m.at), m.at,
                             snapshot.source_id(m.source)))
    return out


def _visit_of(snapshot: Snapshot, view: ParticipantView, at: datetime) -> str:
    if view.assignment is None:
        return ""
    offset = at - view.assignment.day0
    for v in snapshot.study.visits:
        if v.start <= offset <= v.end:
            return v.code
    return BASELINE if snapshot.study.baseline_start <= offset < timedelta(0) else ""


def _refused_visit(snapshot: Snapshot, subject: str, at: datetime | None) -> str:
    view = snapshot.participant(subject)
    return _visit_of(snapshot, view, at) if view is not None and at is not None else ""


def _audit(snapshot: Snapshot) -> list[Query]:
    out = []
    not_enrolled: Counter[str] = Counter()
    for entry in snapshot.audit:
        for r in entry.refusals:  # refused values of participants, each on its own
            out.append(Query("refused", f"received {entry.at.isoformat(timespec='seconds')}: "
                             f"{r.reason}", r.subject, r.analyte,
                             _refused_visit(snapshot, r.subject, r.at), r.at or entry.at,
                             entry.sender))
        found = _ERRORS.search(entry.outcome)
        errors = int(found.group(1)) if found else int(entry.status >= 400)
        if errors > len(entry.refusals):  # refusals that name no participant: the call's row
            out.append(Query("refused", f"{entry.action}: {entry.outcome}", at=entry.at,
                             source=entry.sender))
        for _, reasons in _NOT_KEPT.findall(entry.outcome):
            for part in reasons.split("; "):
                number, _, why = part.partition(" ")
                if "not enrolled" in why and number.isdigit():
                    not_enrolled[entry.sender] += int(number)
    for sender, count in sorted(not_enrolled.items()):
        out.append(Query("not-enrolled", f"{count} resource(s) about patients who are not "
                         "enrolled were answered and not kept; enroll them and send again "
                         "if they should be", source=sender))
    return out
