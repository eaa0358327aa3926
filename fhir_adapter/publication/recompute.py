"""Endpoint results kept current: recomputed in the transaction that changed the data.

New results are stored ``final`` (version 1), changed ones ``amended``, those no longer
produced ``entered-in-error`` (each a new version, queued in the outbox in the same
transaction); unchanged ones are not written at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from fhir_adapter.fhir.primitives import DECIMAL_DIGITS
from fhir_adapter.publication.pseudonyms import PseudonymKey
from fhir_adapter.results import ResultResource, content_hash
from fhir_adapter.store import ResultRow, Store, Unit
from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition
from fhir_adapter.trial.endpoints import compute
from fhir_adapter.trial.model import ParticipantEndpoints, ParticipantRecord

__all__ = ["STALE_BATCH", "WITHDRAWN", "RecomputeReport", "Recomputer", "fault_of"]

WITHDRAWN = "entered-in-error"
#: Queued participants recomputed per transaction by ``recompute_stale``.
STALE_BATCH = 200


@dataclass
class RecomputeReport:
    """What one recomputation did, by result key."""

    created: list[str] = field(default_factory=list)
    amended: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)
    unchanged: int = 0
    #: subject -> why its results could not be computed (they were left as they were)
    faults: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> list[str]:
        return [*self.created, *self.amended, *self.withdrawn]

    def add(self, other: RecomputeReport) -> None:
        self.created += other.created
        self.amended += other.amended
        self.withdrawn += other.withdrawn
        self.unchanged += other.unchanged
        self.faults.update(other.faults)


class Recomputer:
    """Keeps the ``endpoint_result`` rows equal to what the endpoints give."""

    def __init__(self, store: Store, study: StudyDefinition, catalogue: AnalyteCatalogue,
                 key: PseudonymKey) -> None:
        self.store = store
        self.study = study
        self.catalogue = catalogue
        self.key = key

    def endpoints_of(self, record: ParticipantRecord) -> ParticipantEndpoints:
        """The endpoints of one participant; raises when its values are beyond the arithmetic
        (``recompute`` marks it with the reason)."""
        return compute(record, self.study, self.catalogue)

    def readable_endpoints(self, record: ParticipantRecord) -> ParticipantEndpoints:
        """The endpoints of one participant for a reader of every participant: none when they
        cannot be computed (that participant is marked), so that the reader goes on."""
        try:
            return self.endpoints_of(record)
        except (ArithmeticError, ValueError):
            return ParticipantEndpoints(record.participant.subject)

    def endpoints(self) -> list[ParticipantEndpoints]:
        """The endpoints of every participant, from the stored data."""
        with self.store.read() as unit:
            records = unit.records()
        return [self.readable_endpoints(r) for r in records]

    def recompute(self, unit: Unit, subjects: Iterable[str]) -> RecomputeReport:
        """Bring the results of these participants (only) up to date, inside ``unit``."""
        report = RecomputeReport()
        wanted = sorted(set(subjects))
        if not wanted:
            return report
        builder = self.key.builder(self.key.in_unit(unit))
        records = {r.participant.subject: r for r in unit.records(wanted)}
        done = []
        for subject in wanted:
            record = records.get(subject)
            produced: list[ResultResource] = []
            if record is not None:
                try:  # computed and built before anything of it is written
                    produced = builder.endpoint_resources(self.endpoints_of(record))
                except (ArithmeticError, ValueError) as exc:
                    # values the arithmetic cannot hold: this participant's results stay as
                    # they were, it is marked with the reason, the others go on
                    report.faults[subject] = fault_of(record, exc)
                    unit.mark_fault(subject, report.faults[subject])
                    continue
            stored = {row.key: row for row in unit.results(subject=subject)}
            _store_results(unit, subject, produced, stored, report)
            done.append(subject)
        unit.clear_stale(done)
        return report

    def queue(self, unit: Unit, subjects: set[str]) -> None:
        """Queue these participants for ``recompute_stale`` (bulk loads), in ``unit``; the key
        their results will carry is made now, with them."""
        if subjects:
            self.key.in_unit(unit)
            unit.mark_stale(sorted(subjects))

    def ensure_key(self, unit: Unit) -> None:
        """Make the key in this writing unit if it does not exist yet (a participant made
        without data yet, by ``enroll``, is published under it)."""
        self.key.in_unit(unit)

    def recompute_stale(self, *, batch: int = STALE_BATCH) -> RecomputeReport:
        """Recompute every participant queued by ``queue`` (bulk loads), each once, ``batch``
        of them per transaction; each batch leaves the queue as it is committed, so a
        recomputation that stops is taken up where it stopped."""
        report = RecomputeReport()
        while True:
            with self.store.transaction() as unit:
                subjects = unit.stale_subjects(limit=batch, claim=True)
                if not subjects:
                    return report
                report.add(self.recompute(unit, subjects))

    def recompute_all(self) -> RecomputeReport:
        """Every participant, in one transaction (after a change of the study definition)."""
        with self.store.transaction() as unit:
            subjects = {p.subject for p in unit.participants()}
            subjects |= {r.subject for r in unit.results()}
            return self.recompute(unit, subjects)


def fault_of(record: ParticipantRecord, exc: Exception) -> str:
    """Why a participant's endpoints cannot be computed, naming the value at fault when one
    is not a number the adapter holds (``fhir.primitives.DECIMAL_DIGITS``)."""
    whole, places = DECIMAL_DIGITS
    for m in record.measurements:
        if not m.value.is_finite():
            problem = "is not a finite number"
        elif m.value and not -places <= m.value.adjusted() < whole:
            problem = f"is beyond {whole} digits before the point and {places} after it"
        else:
            continue
        return (f"results not computed: {m.analyte} {m.value} {m.unit} of "
                f"{m.at.date().isoformat()} {problem}; they stay as they were until this value "
                "is corrected")
    return (f"results not computed: the endpoint arithmetic failed ({type(exc).__name__}); "
            "they stay as they were until the data change")


def _store_results(unit: Unit, subject: str, produced: list[ResultResource],
                   stored: dict[str, ResultRow], report: RecomputeReport) -> None:
    """Compare with the rows read in this unit; write what changed in one go (each changed
    result a new version, queued in the outbox)."""
    writes: list[ResultRow] = []
    at = unit.now()
    for result in produced:
        digest = content_hash(result.resource)
        old = stored.pop(result.key, None)
        if old is not None and old.content_hash == digest and old.status != WITHDRAWN:
            report.unchanged += 1
            continue
        status = "final" if old is None else "amended"
        writes.append(ResultRow(result.key, result.kind, subject, status, digest,
                                result.resource, 1 if old is None else old.version + 1, at))
        (report.created if old is None else report.amended).append(result.key)
    for old in stored.values():
        if old.status == WITHDRAWN:
            continue
        writes.append(ResultRow(old.key, old.kind, subject, WITHDRAWN, old.content_hash,
                                old.resource, old.version + 1, at))
        report.withdrawn.append(old.key)
    unit.put_results(writes, enqueue=True)
