"""The schedule of activities: participants x visits, each cell in one state with its values.

States, most in need of action first (a cell of several analytes takes the first state any of
them is in, except that present and missed together make ``partial``):

- ``refused``: a value sent for this visit was refused (the reason from the audit);
- ``out-of-window``: a value fell outside every window, nearest to this visit (day offset shown);
- ``preliminary``: only a preliminary value (not counted until final);
- ``withdrawn``: the value was withdrawn (entered-in-error, cancelled) and none replaced it, or
  the participant was withdrawn before the visit;
- ``missed``: the window has passed without a value;
- ``partial``: some analytes have a value, others were missed;
- ``present``: a counting value in the window;
- ``due``: the window has not passed yet;
- ``none``: nothing is scheduled and nothing came.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from functools import partial

from fhir_adapter.trial.model import Measurement
from fhir_adapter.trial.visits import BASELINE
from fhir_adapter.workspace.snapshot import ParticipantView, Refusal, Snapshot

__all__ = [
    "DAY0",
    "STATES",
    "Cell",
    "CellValue",
    "GridRow",
    "cell",
    "columns",
    "grid",
    "nearest_visit",
    "scheduled",
    "short_number",
]

#: The column of the infusion itself.
DAY0 = "D0"
#: state -> (symbol, label), in the order of the legend.
STATES: dict[str, tuple[str, str]] = {
    "refused": ("⊘", "refused by the adapter (the reason is in the cell)"),
    "present": ("✓", "value present"),
    "partial": ("◐", "some analytes present, others missed"),
    "missed": ("○", "missed: window passed without a value"),
    "out-of-window": ("◇", "value outside every window (day offset, nearest visit)"),
    "preliminary": ("◔", "preliminary only (not counted until final)"),
    "withdrawn": ("✗", "withdrawn (value entered in error, or participant withdrawn)"),
    "due": ("·", "window not passed yet"),
    "none": (" ", "nothing scheduled"),
}
_PRIORITY = ("refused", "out-of-window", "preliminary", "withdrawn")
_SECONDS_PER_DAY = Decimal(86400)


@dataclass(frozen=True, slots=True)
class CellValue:
    """One value shown in a cell: where it fell and why it counts or not."""

    measurement: Measurement
    offset_days: Decimal
    role: str  # "chosen", "also in window", "outside every window", or the status

    @property
    def counts(self) -> bool:
        return self.role == "chosen"


@dataclass(slots=True)
class Cell:
    subject: str
    visit: str
    state: str
    analytes: dict[str, str] = field(default_factory=dict)  # analyte -> its own state
    values: list[CellValue] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    @property
    def symbol(self) -> str:
        return STATES[self.state][0]

    @property
    def label(self) -> str:
        return STATES[self.state][1]

    def value_of(self, analyte: str) -> Decimal | None:
        """The counting value of one analyte in this cell, if it has one."""
        for v in self.values:
            if v.counts and v.measurement.analyte == analyte:
                return v.measurement.value
        return None

    def text(self, analyte: str | None) -> str:
        """What the cell says besides its symbol: the value of one analyte, the day offset of
        a value out of window, or how many analytes have a value."""
        if self.state == "out-of-window":
            outside = [v for v in self.values if v.role == "outside every window"]
            return f"d{outside[0].offset_days:.0f}" if outside else ""
        chosen = [v for v in self.values if v.counts]
        if analyte is not None and chosen:
            m = chosen[0].measurement
            return f"{m.comparator or ''}{short_number(m.value)}"
        if self.state == "partial":
            present = sum(1 for s in self.analytes.values() if s == "present")
            return f"{present}/{len(self.analytes)}"
        return ""


@dataclass(slots=True)
class GridRow:
    view: ParticipantView
    cells: dict[str, Cell]


def short_number(value: Decimal) -> str:
    """A value in a grid cell: at most four significant digits (the whole value elsewhere)."""
    shown = value if value.adjusted() >= 3 else round(value, max(0, 3 - value.adjusted()))
    text = format(shown.normalize(), "f")
    return "0" if text in ("-0", "") else text


def columns(snapshot: Snapshot) -> list[str]:
    return [BASELINE, DAY0, *(v.code for v in snapshot.study.visits)]


def days(offset: timedelta) -> Decimal:
    seconds = Decimal(offset.days * 86400 + offset.seconds) + Decimal(offset.microseconds) / 10**6
    return (seconds / _SECONDS_PER_DAY).quantize(Decimal("0.1"))


def nearest_visit(snapshot: Snapshot, offset: timedelta) -> str:
    """The visit (or BL, D0) whose nominal time is nearest to an offset from Day 0."""
    if offset < timedelta(0):
        return BASELINE
    nominal = [(DAY0, timedelta(0)), *((v.code, v.nominal) for v in snapshot.study.visits)]
    return min(nominal, key=lambda item: (abs(offset - item[1]), item[1]))[0]


def scheduled(snapshot: Snapshot) -> dict[str, frozenset[str]]:
    """Visit -> the analytes the study's endpoints use at it (measured ones)."""
    out: dict[str, set[str]] = {}
    for endpoint in snapshot.study.endpoints.values():
        for visit in endpoint.visits:
            out.setdefault(visit, set()).update(
                a for a in endpoint.analytes if not snapshot.catalogue.analytes[a].computed)
    return {visit: frozenset(names) for visit, names in out.items()}


Buckets = dict[tuple[str, str], list[CellValue]]
Refused = dict[tuple[str, str], list[Refusal]]


def refused_cells(snapshot: Snapshot, view: ParticipantView) -> Refused:
    """(column, analyte) -> the refused values that would have fallen there."""
    out: Refused = {}
    assignment = view.assignment
    if assignment is None:
        return out
    for refusal in snapshot.refusals(view.subject):
        if refusal.at is None:
            continue
        offset = refusal.at - assignment.day0
        column = _window_of(snapshot, offset) or nearest_visit(snapshot, offset)
        out.setdefault((column, refusal.analyte), []).append(refusal)
    return out


def buckets(snapshot: Snapshot, view: ParticipantView) -> Buckets:
    """(column, analyte) -> the values shown there, every value of the participant placed once:
    a value in a window under its visit, one outside every window under the nearest visit, one
    that does not count (preliminary, withdrawn) under the window its time falls in."""
    out: Buckets = {}
    assignment = view.assignment
    if assignment is None:
        return out
    for analyte, placed in assignment.placements.items():
        for p in placed:
            if p.window is not None:
                role = "chosen" if p.chosen else "also in window"
                column = p.window
            else:
                role, column = "outside every window", nearest_visit(snapshot, p.offset)
            out.setdefault((column, analyte), []).append(
                CellValue(p.measurement, days(p.offset), role))
    for analyte, values in assignment.not_counting.items():
        for m in values:
            offset = m.at - assignment.day0
            window = _window_of(snapshot, offset)
            if window is not None:
                out.setdefault((window, analyte), []).append(CellValue(m, days(offset), m.status))
    return out


def cell(snapshot: Snapshot, view: ParticipantView, visit: str, analyte: str | None = None,
         *, placed: Buckets | None = None, plan: dict[str, frozenset[str]] | None = None,
         refused: Refused | None = None) -> Cell:
    """The cell of one participant at one visit, for one analyte or all of them."""
    found = Cell(view.subject, visit, "none")
    assignment = view.assignment
    if assignment is None:
        return found
    if visit == DAY0:
        found.state = "present"
        return found
    placed = buckets(snapshot, view) if placed is None else placed
    plan = scheduled(snapshot) if plan is None else plan
    refused = refused_cells(snapshot, view) if refused is None else refused
    wanted = [analyte] if analyte else list(snapshot.catalogue.analytes)
    due = plan.get(visit, frozenset())
    for name in wanted:
        values = placed.get((visit, name), [])
        state = _analyte_state(view, visit, name, values, name in due)
        sent = refused.get((visit, name), [])
        if sent and state != "present":
            state = "refused"
        found.refused += sent
        found.values += values
        if state != "none":
            found.analytes[name] = state
    found.state = _combined(list(found.analytes.values()))
    found.values.sort(key=lambda v: (v.measurement.at, v.measurement.analyte))
    return found


def _analyte_state(view: ParticipantView, visit: str, analyte: str, values: list[CellValue],
                   is_scheduled: bool) -> str:
    assignment = view.assignment
    assert assignment is not None
    roles = {v.role for v in values}
    if "chosen" in roles:
        return "present"
    if "outside every window" in roles:
        return "out-of-window"
    if roles & {"preliminary", "registered"}:
        return "preliminary"
    if roles:
        return "withdrawn"
    if visit in assignment.missed.get(analyte, ()):
        return "missed"
    if is_scheduled and analyte in assignment.placements:
        return "withdrawn" if view.stopped else "due"
    return "none"


def _window_of(snapshot: Snapshot, offset: timedelta) -> str | None:
    """The window an offset falls in (for values that do not count, so are not placed)."""
    if offset < timedelta(0):
        return BASELINE if offset >= snapshot.study.baseline_start else None
    for v in snapshot.study.visits:
        if v.start <= offset <= v.end:
            return v.code
    return None


def _combined(states: list[str]) -> str:
    if not states:
        return "none"
    present = "present" in states
    for state in _PRIORITY:
        if state in states and not (state == "out-of-window" and present):
            return state
    if "missed" in states:
        return "partial" if present else "missed"
    if present:
        return "present"
    return "withdrawn" if "withdrawn" in states else "due"


def grid(snapshot: Snapshot, analyte: str | None = None) -> list[GridRow]:
    """Every participant's row: one cell per column."""
    plan = scheduled(snapshot)
    shown = columns(snapshot)

    def row(view: ParticipantView) -> GridRow:
        placed, refused = buckets(snapshot, view), refused_cells(snapshot, view)
        return GridRow(view, {c: cell(snapshot, view, c, analyte, placed=placed, plan=plan,
                                      refused=refused) for c in shown})

    # a row is the participant's record (the view), its refused values and the study's plan
    # (the same for every snapshot of one study)
    return [view.memo(("grid-row", analyte, tuple(snapshot.refusals(view.subject))),
                      partial(row, view))
            for view in snapshot.participants]
