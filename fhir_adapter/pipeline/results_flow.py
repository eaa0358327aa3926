"""Endpoint results kept current: recomputed with the data change, then published as FHIR."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir_adapter.errors import ConfigError
from fhir_adapter.gcpause import gc_paused
from fhir_adapter.results import (
    PARTICIPANT_ENDPOINT,
    BundleForm,
    Pseudonymiser,
    ResultBuilder,
    ResultResource,
    content_hash,
    result_id,
    summary_period,
    with_derived_from,
)
from fhir_adapter.results.study import subject_ids
from fhir_adapter.store import ResultRow, Store, Unit
from fhir_adapter.store.published import source_documents
from fhir_adapter.store.secrets import PSEUDONYM_KEY, read_secret, secret
from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition
from fhir_adapter.trial.endpoints import compute, summarize
from fhir_adapter.trial.model import ParticipantEndpoints, ParticipantRecord, StudySummary

__all__ = ["RecomputeReport", "ResultsFlow", "configured_key"]

WITHDRAWN = "entered-in-error"
Stamp = tuple[int, int]
Period = tuple[datetime, datetime]
#: Queued participants recomputed per transaction by ``recompute_stale``.
STALE_BATCH = 200
_MIN_KEY_BYTES = 16


def configured_key(settings: object) -> bytes | None:
    """The pseudonym key of the settings (``FHIR_ADAPTER_PSEUDONYM_KEY``), when one is set."""
    raw = getattr(settings, "pseudonym_key", None)
    if raw is None or raw == "":
        return None
    if hasattr(raw, "get_secret_value"):
        raw = raw.get_secret_value()
    key = raw if isinstance(raw, bytes) else str(raw).encode("utf-8")
    if len(key) < _MIN_KEY_BYTES:
        raise ConfigError(f"FHIR_ADAPTER_PSEUDONYM_KEY must have at least {_MIN_KEY_BYTES} "
                          f"bytes; it has {len(key)}")
    return key


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


@dataclass
class RecomputeReport:
    """What one recomputation did, by result key."""

    created: list[str] = field(default_factory=list)
    amended: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def changed(self) -> list[str]:
        return [*self.created, *self.amended, *self.withdrawn]


class ResultsFlow:
    """Keeps the ``endpoint_result`` rows equal to what the endpoints give, and publishes them.

    ``recompute`` runs inside the unit of work that changed the data: new results are stored
    ``final`` (version 1), changed ones ``amended``, those no longer produced
    ``entered-in-error`` (each a new version, queued in the outbox in the same transaction);
    unchanged ones are not written at all."""

    def __init__(self, store: Store, study: StudyDefinition, catalogue: AnalyteCatalogue, *,
                 pseudonym_key: bytes | None = None) -> None:
        self.store = store
        self.study = study
        self.catalogue = catalogue
        self._key = pseudonym_key
        self._summary: tuple[Stamp, StudySummary, Period | None] | None = None
        self._digests: dict[str, _Digest] = {}  # by subject: what the summary needs
        self._lock = threading.Lock()

    # -- the key ---------------------------------------------------------------------------
    def _key_in(self, unit: Unit) -> bytes:
        """The key, made in ``unit`` on first use (kept in memory once it is committed)."""
        if self._key is not None:
            return self._key
        key, created = secret(unit, PSEUDONYM_KEY)
        if not created:
            self._key = key
        return key

    def ensure_key(self, unit: Unit) -> None:
        """Make the key in this writing unit if it does not exist yet: every write that makes
        a participant calls it, so that a read never has to."""
        self._key_in(unit)

    def key(self) -> bytes:
        """The key, outside any open unit of work; a read makes nothing. Without a stored key
        no participant was ever written, so no published id depends on it: a key of this
        call alone serves (the study resources carry no pseudonym)."""
        if self._key is None:
            with self.store.read() as unit:
                found = read_secret(unit, PSEUDONYM_KEY)
            if found is None:
                return secrets.token_bytes(32)
            self._key = found
        return self._key

    def builder(self, key: bytes) -> ResultBuilder:
        return ResultBuilder(self.study, self.catalogue, pseudonym_key=key,
                             clock=self.store.clock)

    # -- recomputation ---------------------------------------------------------------------
    def recompute(self, unit: Unit, subjects: Iterable[str]) -> RecomputeReport:
        """Bring the results of these participants (only) up to date, inside ``unit``."""
        report = RecomputeReport()
        wanted = sorted(set(subjects))
        if not wanted:
            return report
        builder = self.builder(self._key_in(unit))
        records = {r.participant.subject: r for r in unit.records(wanted)}
        for subject in wanted:
            record = records.get(subject)
            produced = builder.endpoint_resources(self.endpoints_of(record)) if record else []
            stored = {row.key: row for row in unit.results(subject=subject)}
            _store_results(unit, subject, produced, stored, report)
        unit.clear_stale(wanted)
        return report

    def queue(self, unit: Unit, subjects: set[str]) -> None:
        """Queue these participants for ``recompute_stale`` (bulk loads), in ``unit``."""
        if subjects:
            self._key_in(unit)
            unit.mark_stale(sorted(subjects))

    def recompute_stale(self, *, batch: int = STALE_BATCH) -> RecomputeReport:
        """Recompute every participant queued by ``Unit.mark_stale`` (bulk loads), each once,
        ``batch`` of them per transaction; each batch leaves the queue as it is committed, so
        a recomputation that stops is taken up where it stopped."""
        report = RecomputeReport()
        while True:
            with self.store.transaction() as unit:
                subjects = unit.stale_subjects(limit=batch, claim=True)
                if not subjects:
                    return report
                done = self.recompute(unit, subjects)
            report.created += done.created
            report.amended += done.amended
            report.withdrawn += done.withdrawn
            report.unchanged += done.unchanged

    def recompute_all(self) -> RecomputeReport:
        """Every participant, in one transaction (after a change of the study definition)."""
        with self.store.transaction() as unit:
            subjects = {p.subject for p in unit.participants()}
            subjects |= {r.subject for r in unit.results()}
            return self.recompute(unit, subjects)

    def endpoints_of(self, record: ParticipantRecord) -> ParticipantEndpoints:
        return compute(record, self.study, self.catalogue)

    def endpoints(self) -> list[ParticipantEndpoints]:
        """The endpoints of every participant, from the stored data."""
        with self.store.read() as unit:
            records = unit.records()
        return [self.endpoints_of(r) for r in records]

    # -- publishing ------------------------------------------------------------------------
    def bundle(self, *, since: datetime | None = None, form: BundleForm = "collection",
               keys: Sequence[str] | None = None, subjects: Sequence[str] | None = None,
               with_results: bool = True) -> dict[str, Any]:
        """The result Bundle: everything (withdrawn results as entered-in-error), what changed
        after ``since``, or (``keys``) the current version of those results and what they need.

        For reads and searches, parts of the whole Bundle, each resource in them as it is
        there: with ``subjects`` only those participants' results, sources, Patient and
        ResearchSubject; without ``with_results`` no result and no source; the study resources
        and the summary always."""
        builder = self.builder(self.key())
        with gc_paused(), self.store.read() as unit:
            stamp = unit.results_stamp()
            cached = self._summary_of(stamp) or self._summarize(unit, stamp)
            if since is not None and keys is None:
                rows = _since_rows(unit, since)  # an incremental pull reads what it sends
            elif not with_results:
                rows = []
            elif subjects is not None:
                rows = [_resource(r) for r in unit.results(subjects=subjects)]
            else:
                rows = [_resource(r) for r in unit.results()]
            people = unit.participants()
            if subjects is not None:
                wanted = set(subjects)
                rows = [r for r in rows if r.subject in wanted]
                people = [p for p in people if p.subject in wanted]
            chosen = rows if keys is None else _with_dependencies(rows, keys)
            if since is not None:
                chosen = [r for r in chosen if r.last_updated is None or r.last_updated > since]
            named = {r.subject for r in chosen}
            sources = source_documents(unit, named)
        if keys is not None:
            people = [p for p in people if p.subject in named]
            rows = chosen
        summary, period = cached
        return builder.bundle(
            rows, participants=[p.as_participant() for p in people], sources=sources,
            summary=summary, subject_status={p.subject: p.status for p in people},
            form=form, since=since, period=period,
        )

    def subjects_named(self, resource_type: str,
                       params: Mapping[str, Sequence[str]]) -> list[str] | None:
        """The participants whose published resources can answer this read or search of
        Observations (``_id`` or ``subject``), or None when every one can."""
        if resource_type != "Observation":
            return None
        if "subject" in params:
            wanted = {part for v in params["subject"] for part in v.split(",") if part}
            with self.store.read() as unit:
                people = unit.participants()
            return sorted(p.subject for p in people if _names(wanted, subject_ids(p.subject)[0]))
        if "_id" in params:
            ids = {part for v in params["_id"] for part in v.split(",") if part}
            return self._owners_of(ids)
        return None

    def _owners_of(self, ids: set[str]) -> list[str]:
        """The participants of the published Observations with these ids: results (ids made
        from their keys) and sources (pseudonymous ids of the stored ones); no resource is
        read."""
        pseudonyms = Pseudonymiser(self.key())
        with self.store.read() as unit:
            found = {result_id(key, kind): subject for key, kind, subject in unit.result_owners()}
            owners = {found[i] for i in ids if i in found}
            wanted = {f"Observation/{i}" for i in ids if i not in found}
            if wanted:  # not all of them results: sources
                owners |= {subject for rid, subject in unit.measurement_owners()
                           if pseudonyms.reference(f"Observation/{rid}") in wanted}
        return sorted(owners)

    def _summary_of(self, stamp: Stamp) -> tuple[StudySummary, Period | None] | None:
        """The study summary and its period, computed when the results were last as ``stamp``
        says, if they were.

        The summary counts and takes medians of participant endpoints, every one of which is
        published as a result, and its period spans the results: while no result is written
        neither can change, so an incremental pull neither computes every participant's
        endpoints again nor reads every result."""
        cached = self._summary
        return (cached[1], cached[2]) if cached is not None and cached[0] == stamp else None

    def _summarize(self, unit: Unit, stamp: Stamp) -> tuple[StudySummary, Period | None]:
        """The summary and period of the results as they are in ``unit``, computing again only
        the participants whose results changed since the last time (by their own count and
        sum of versions: exact, whatever the clocks of concurrent writers). One thread at a
        time (the server answers reads in a pool); a second finds the first's work done."""
        with self._lock:
            return self._summary_of(stamp) or self._summarize_now(unit, stamp)

    def _summarize_now(self, unit: Unit, stamp: Stamp) -> tuple[StudySummary, Period | None]:
        stamps = unit.result_stamps()
        for gone in set(self._digests) - set(stamps):
            del self._digests[gone]
        changed = sorted(s for s, st in stamps.items()
                         if s not in self._digests or self._digests[s].stamp != st)
        for first in range(0, len(changed), STALE_BATCH):
            batch = changed[first:first + STALE_BATCH]
            records = {r.participant.subject: r for r in unit.records(batch)}
            rows: dict[str, list[ResultResource]] = {}
            for row in unit.results(subjects=batch):
                rows.setdefault(row.subject, []).append(_resource(row))
            for subject in batch:
                record = records.get(subject)
                endpoints = self.endpoints_of(record) if record else \
                    ParticipantEndpoints(subject)
                self._digests[subject] = _Digest(
                    stamps[subject], _summarised(endpoints, set(self.study.median_changes)),
                    summary_period(rows.get(subject, [])))
        digests = [self._digests[s] for s in sorted(self._digests)]
        periods = [d.period for d in digests if d.period is not None]
        period = (min(p[0] for p in periods), max(p[1] for p in periods)) if periods else None
        summary = summarize([d.endpoints for d in digests], self.study.median_changes)
        self._summary = (stamp, summary, period)
        return summary, period

    def csv(self) -> str:
        """The tidy table, one row per participant x analyte x visit."""
        builder = self.builder(self.key())
        with self.store.read() as unit:
            records = unit.records()
        return builder.to_csv([self.endpoints_of(r) for r in records], records=records)


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


def _names(wanted: set[str], patient: str) -> bool:
    """Whether a ``subject`` search value names this pseudonymous Patient (``Patient/id`` or
    the bare id), as the search itself matches it."""
    return f"Patient/{patient}" in wanted or patient in wanted


def _since_rows(unit: Unit, since: datetime) -> list[ResultResource]:
    """The results written after ``since``, and every result of the participants among them
    who have a participant-level one (the visit results it derives from are among these)."""
    changed = [_resource(r) for r in unit.results(since=since)]
    owners = {r.subject for r in changed if r.kind == PARTICIPANT_ENDPOINT}
    keys = {r.key for r in changed}
    more = [_resource(r) for r in unit.results(subjects=sorted(owners)) if r.key not in keys]
    return sorted([*changed, *more], key=lambda r: r.key)


def _resource(row: ResultRow) -> ResultResource:
    return ResultResource(row.key, row.kind, row.subject, row.resource, row.status,
                          row.last_updated)


def _with_dependencies(rows: list[ResultResource], keys: Sequence[str]) -> list[ResultResource]:
    """The results named by ``keys`` (unknown keys skipped), plus the visit-level results a
    chosen participant-level one derives from."""
    by_key = {r.key: r for r in rows}
    chosen = [by_key[k] for k in dict.fromkeys(keys) if k in by_key]
    return sorted(with_derived_from(chosen, rows), key=lambda r: r.key)
