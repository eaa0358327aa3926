"""What every view of the data manager's workspace is computed from, once per state of the data.

A snapshot holds, per participant, the trial record, the visit assignment and the endpoints, and
the audit trail; the views (schedule grid, queries, participant pages, the statisticians' table)
read it and never the store. Source Observations are named only by their pseudonymous ids (the
``pseudonym`` function the results use), never by an id or identifier of the hospital.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar, cast

from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition
from fhir_adapter.trial.endpoints import compute
from fhir_adapter.trial.endpoints.common import age_in_years
from fhir_adapter.trial.model import ParticipantEndpoints, ParticipantRecord
from fhir_adapter.trial.visits import VisitAssignment, assign_visits, study_date

__all__ = ["AuditEntry", "ParticipantView", "Refusal", "Snapshot", "build_snapshot",
           "plain_number", "without_sender_text"]

T = TypeVar("T")
#: ResearchSubject statuses after which no more data is expected.
STOPPED = frozenset({"withdrawn", "off-study"})


_IDENTIFIER_VALUE = re.compile(r"(identifier=[^|\s]*\|)[^\s,;:)'\"]+")
#: What a message of the adapter quotes of its input (``{value!r}``): the sender's text.
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")


def without_sender_text(text: str) -> str:
    """A message of the adapter as pages and queries show it: the values of the identifiers it
    names (an MRN in a conditional reference, an accession number) and every string it quotes
    from the input (a unit, a code text) blanked. Research tokens see the pages too, and what
    a sender wrote can name the person; the sender itself got the whole message."""
    return _QUOTED.sub("'…'", _IDENTIFIER_VALUE.sub(r"\1…", text))


def plain_number(value: Decimal | None) -> str:
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused Observation of a participant: what it was about and why it was refused."""

    subject: str
    analyte: str
    at: datetime | None  # the time of the measurement it carried
    reason: str
    sender: str
    received: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit row: who sent what, when, and what came of it (``outcome`` starts with the
    HTTP status). ``resources`` are ``Type/id`` keys of the adapter; ``refusals`` describe the
    refused entries about participants."""

    at: datetime
    sender: str
    action: str
    resources: tuple[str, ...]
    outcome: str
    refusals: tuple[Refusal, ...] = ()

    @property
    def status(self) -> int:
        head = self.outcome.split(" ", 1)[0]
        return int(head) if head.isdigit() else 0

    @property
    def refused(self) -> bool:
        """The call was refused as a whole, or some of its entries were."""
        return self.status >= 400 or " error" in self.outcome


class ParticipantView:
    """One participant as every view sees it; the endpoints are computed on first use (the
    schedule and the queries need only the visit assignment)."""

    def __init__(self, record: ParticipantRecord, status: str, assignment: VisitAssignment | None,
                 endpoints: Callable[[], ParticipantEndpoints], fault: str | None = None) -> None:
        self.record = record
        self.status = status
        self.assignment = assignment  # None without Day 0
        self._compute = endpoints
        self._endpoints: ParticipantEndpoints | None = None
        #: why this participant's results could not be computed (the store's mark), or None
        self.fault = fault
        self._memo: dict[Hashable, Any] = {}

    def memo(self, key: Hashable, make: Callable[[], T]) -> T:
        """What is derived from this participant alone (a row of the schedule), made once: a
        view is kept by the next snapshot while the participant's record and status are equal,
        so ``key`` must name whatever else the result depends on."""
        if key not in self._memo:
            self._memo[key] = make()
        return cast(T, self._memo[key])

    @property
    def endpoints(self) -> ParticipantEndpoints:
        """Its endpoints; none when its values are beyond the arithmetic (``fault`` says so)."""
        if self._endpoints is None:
            try:
                self._endpoints = self._compute()
            except (ArithmeticError, ValueError) as exc:
                self._endpoints = ParticipantEndpoints(self.subject)
                self.fault = self.fault or f"results not computed: {type(exc).__name__}"
        return self._endpoints

    @property
    def subject(self) -> str:
        return self.record.participant.subject

    @property
    def stopped(self) -> bool:
        return self.status in STOPPED

    @property
    def day0(self) -> datetime | None:
        infusion = self.record.day0
        return infusion.at if infusion else None


@dataclass(slots=True)
class Snapshot:
    """Every participant's view and the audit trail, as the data were at one moment."""

    study: StudyDefinition
    catalogue: AnalyteCatalogue
    participants: list[ParticipantView]
    audit: list[AuditEntry]
    pseudonym: Callable[[str], str]
    #: a number as the result Bundle and its CSV write it (their rounding)
    number: Callable[[Decimal | None], str] = plain_number
    _by_subject: dict[str, ParticipantView] = field(default_factory=dict, repr=False)
    _refused: dict[str, list[Refusal]] = field(default_factory=dict, repr=False)
    _memo: dict[Hashable, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_subject = {p.subject: p for p in self.participants}
        for entry in self.audit:
            for refusal in entry.refusals:
                self._refused.setdefault(refusal.subject, []).append(refusal)

    def memo(self, key: Hashable, make: Callable[[], T]) -> T:
        """What is derived from the whole snapshot (a grid, a page), made once: the snapshot
        never changes, a new one replaces it when the data do."""
        if key not in self._memo:
            self._memo[key] = make()
        return cast(T, self._memo[key])

    def refusals(self, subject: str) -> list[Refusal]:
        """The refused values of a participant, newest first (as the audit lists them)."""
        return self._refused.get(subject, [])

    def participant(self, subject: str) -> ParticipantView | None:
        return self._by_subject.get(subject)

    def day0_date(self, view: ParticipantView) -> date | None:
        return study_date(view.day0, self.study) if view.day0 else None

    def age_at_day0(self, view: ParticipantView) -> int | None:
        born = view.record.participant.birth_date
        day0 = self.day0_date(view)
        return age_in_years(born, day0) if born and day0 else None

    def source_id(self, source: str) -> str:
        """The pseudonymous id of a source key (``Observation/<adapter id>``)."""
        return self.pseudonym(source)


def build_snapshot(
    records: Iterable[ParticipantRecord],
    statuses: dict[str, str],
    study: StudyDefinition,
    catalogue: AnalyteCatalogue,
    *,
    audit: Sequence[AuditEntry] = (),
    pseudonym: Callable[[str], str],
    number: Callable[[Decimal | None], str] = plain_number,
    previous: Snapshot | None = None,
    faults: dict[str, str] | None = None,
) -> Snapshot:
    """Assign every participant's values to visits and compute their endpoints, once.

    A participant whose record and status are equal to those in ``previous`` keeps its view
    there (its visit assignment, endpoints and memos are functions of the record alone): after
    a write, only the participants it changed are computed again. ``faults``: why the results
    of a participant could not be computed (the store's marks)."""
    views = []
    kept = {} if previous is None else previous._by_subject
    for record in records:
        status = statuses.get(record.participant.subject, "")
        old = kept.get(record.participant.subject)
        if old is not None and old.status == status and (old.record is record
                                                          or old.record == record):
            if faults and record.participant.subject in faults:
                old.fault = faults[record.participant.subject]
            views.append(old)
            continue
        infusion = record.day0
        subject = record.participant.subject
        assignment = assign_visits(record.measurements, infusion, study) if infusion else None
        views.append(ParticipantView(record, status, assignment,
                                     partial(compute, record, study, catalogue),
                                     (faults or {}).get(subject)))
    return Snapshot(study, catalogue, views, list(audit), pseudonym, number)
