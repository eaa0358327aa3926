"""The study summary and its period, kept per participant and per results stamp.

The summary counts and takes medians of participant endpoints, every one of which is published
as a result, and its period spans the results: while no result is written neither can change,
so an incremental pull neither computes every participant's endpoints again nor reads every
result. When results change, only the participants whose own results changed (by their count
and sum of versions: exact, whatever the clocks of concurrent writers) are computed again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from fhir_adapter.publication.recompute import STALE_BATCH, Recomputer
from fhir_adapter.results import ResultResource, summary_period
from fhir_adapter.store import ResultRow, Unit
from fhir_adapter.trial.endpoints import summarize
from fhir_adapter.trial.model import ParticipantEndpoints, StudySummary

__all__ = ["Period", "Stamp", "Summaries", "as_resource"]

Stamp = tuple[int, int]
Period = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class _Digest:
    """What the study summary needs of one participant, and the results it was made from:
    (count, sum of versions) of the participant's results, the endpoints the summary reads
    (``_summarised``), the first and last effective time of the participant's results."""

    stamp: Stamp
    endpoints: ParticipantEndpoints
    period: Period | None


def _summarised(endpoints: ParticipantEndpoints,
                medians: set[tuple[str, str, str]]) -> ParticipantEndpoints:
    """The part of a participant's endpoints that ``summarize`` reads: every participant-level
    result, one visit result per endpoint, and the visit results whose change gets a median.
    Kept per participant, it costs a tenth of the whole."""
    seen: set[str] = set()
    kept = []
    for result in endpoints.visit_results:
        if result.endpoint not in seen or \
                (result.endpoint, result.analyte, result.visit) in medians:
            kept.append(result)
            seen.add(result.endpoint)
    return ParticipantEndpoints(endpoints.subject, kept, list(endpoints.participant_results))


class Summaries:
    """The summary of the results as a unit of work sees them, computed again only in part."""

    def __init__(self, recomputer: Recomputer) -> None:
        self.recomputer = recomputer
        self._summary: tuple[Stamp, StudySummary, Period | None] | None = None
        self._digests: dict[str, _Digest] = {}  # by subject: what the summary needs
        self._lock = threading.Lock()

    def of(self, unit: Unit) -> tuple[StudySummary, Period | None]:
        """The summary and period of the results in ``unit``. One thread at a time computes
        (the server answers reads in a pool); a second finds the first's work done."""
        stamp = unit.results_stamp()
        cached = self._cached(stamp)
        if cached is not None:
            return cached
        with self._lock:
            return self._cached(stamp) or self._compute(unit, stamp)

    def _cached(self, stamp: Stamp) -> tuple[StudySummary, Period | None] | None:
        cached = self._summary
        return (cached[1], cached[2]) if cached is not None and cached[0] == stamp else None

    def _compute(self, unit: Unit, stamp: Stamp) -> tuple[StudySummary, Period | None]:
        study = self.recomputer.study
        stamps = unit.result_stamps()
        for gone in set(self._digests) - set(stamps):
            del self._digests[gone]
        changed = sorted(s for s, st in stamps.items()
                         if s not in self._digests or self._digests[s].stamp != st)
        medians = set(study.median_changes)
        for first in range(0, len(changed), STALE_BATCH):
            batch = changed[first:first + STALE_BATCH]
            records = {r.participant.subject: r for r in unit.records(batch)}
            rows: dict[str, list[ResultResource]] = {}
            for row in unit.results(subjects=batch):
                rows.setdefault(row.subject, []).append(as_resource(row))
            for subject in batch:
                record = records.get(subject)
                endpoints = self.recomputer.readable_endpoints(record) if record else \
                    ParticipantEndpoints(subject)
                self._digests[subject] = _Digest(stamps[subject], _summarised(endpoints, medians),
                                                 summary_period(rows.get(subject, [])))
        digests = [self._digests[s] for s in sorted(self._digests)]
        periods = [d.period for d in digests if d.period is not None]
        period = (min(p[0] for p in periods), max(p[1] for p in periods)) if periods else None
        summary = summarize([d.endpoints for d in digests], study.median_changes)
        self._summary = (stamp, summary, period)
        return summary, period


def as_resource(row: ResultRow) -> ResultResource:
    """A stored result row as the result builder takes it."""
    return ResultResource(row.key, row.kind, row.subject, row.resource, row.status,
                          row.last_updated, row.version)
