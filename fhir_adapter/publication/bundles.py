"""The result Bundles, one named function each: whole, incremental, push, per subject, study.

Each reads what it publishes in one unit of work and hands it to the result builder; the
study resources and the summary are in every one of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir_adapter.gcpause import gc_paused
from fhir_adapter.publication.pseudonyms import PseudonymKey
from fhir_adapter.publication.summary import Period, Summaries, as_resource
from fhir_adapter.results import (
    PARTICIPANT_ENDPOINT,
    BundleForm,
    ResultBuilder,
    ResultResource,
    with_derived_from,
)
from fhir_adapter.store import ParticipantRow, Store, Unit
from fhir_adapter.store.published import newest_result_writes, source_documents
from fhir_adapter.trial.model import StudySummary

__all__ = ["ResultBundles"]


class ResultBundles:
    """The result Bundles of the stored results (pseudonymised; RESULTS.md)."""

    def __init__(self, store: Store, key: PseudonymKey, summaries: Summaries) -> None:
        self.store = store
        self.key = key
        self.summaries = summaries

    def whole(self) -> dict[str, Any]:
        """Every result (withdrawn ones as entered-in-error), as a ``collection``."""
        builder = self._builder()
        with gc_paused(), self.store.read() as unit:
            rows = [as_resource(r) for r in unit.results()]
            part = self._part(unit, rows, unit.participants(), rows)
        return part.publish(builder)

    def incremental(self, since: datetime) -> dict[str, Any]:
        """What changed after ``since``, and what it needs for every reference to resolve:
        the results written after it and every result of their participants who have a
        participant-level one (read alone: an incremental pull reads what it sends)."""
        builder = self._builder()
        with gc_paused(), self.store.read() as unit:
            rows = _since_rows(unit, since)
            sent = [r for r in rows if r.last_updated is None or r.last_updated > since]
            part = self._part(unit, rows, unit.participants(), sent)
        return part.publish(builder, since=since)

    def push(self, keys: Sequence[str] | None) -> dict[str, Any]:
        """The ``transaction`` of the current version of these results (None: every one) and
        of what they need: the visit results they derive from, their participants."""
        builder = self._builder()
        with gc_paused(), self.store.read() as unit:
            rows = [as_resource(r) for r in unit.results()]
            if keys is not None:
                by_key = {r.key: r for r in rows}
                chosen = [by_key[k] for k in dict.fromkeys(keys) if k in by_key]
                rows = sorted(with_derived_from(chosen, rows), key=lambda r: r.key)
            people = unit.participants()
            if keys is not None:
                named = {r.subject for r in rows}
                people = [p for p in people if p.subject in named]
            part = self._part(unit, rows, people, rows)
        return part.publish(builder, form="transaction")

    def for_subjects(self, subjects: Sequence[str]) -> dict[str, Any]:
        """The part of the whole Bundle about these participants: their results, sources,
        Patient and ResearchSubject (each as the whole Bundle has it)."""
        wanted = set(subjects)
        builder = self._builder()
        with gc_paused(), self.store.read() as unit:
            rows = [as_resource(r) for r in unit.results(subjects=subjects)
                    if r.subject in wanted]
            people = [p for p in unit.participants() if p.subject in wanted]
            part = self._part(unit, rows, people, rows)
        return part.publish(builder)

    def without_results(self) -> dict[str, Any]:
        """The part of the whole Bundle made of the study and its participants: no result, no
        source (what reads of ResearchStudy, Patient, ResearchSubject, MeasureReport need)."""
        builder = self._builder()
        with gc_paused(), self.store.read() as unit:
            part = self._part(unit, [], unit.participants(), [])
        return part.publish(builder)

    def _builder(self) -> ResultBuilder:
        return self.key.builder(self.key.for_reading())

    def _part(self, unit: Unit, rows: list[ResultResource], people: list[ParticipantRow],
              sent: list[ResultResource]) -> _Part:
        """What a Bundle of ``rows`` publishes, read in ``unit`` (``sent``: the rows it
        carries, whose sources it needs), with the summary of the results as ``unit`` has
        them."""
        summary, period = self.summaries.of(unit)
        return _Part(rows, people, source_documents(unit, {r.subject for r in sent}), summary,
                     period, newest_result_writes(unit))


@dataclass(frozen=True, slots=True)
class _Part:
    rows: list[ResultResource]
    people: list[ParticipantRow]
    sources: Mapping[str, dict[str, Any]]
    summary: StudySummary
    period: Period | None
    updated: dict[str, datetime]  # per participant: the newest write of its results

    def publish(self, builder: ResultBuilder, *, form: BundleForm = "collection",
                since: datetime | None = None) -> dict[str, Any]:
        """The Bundle, built once the unit of work that read it is closed."""
        return builder.bundle(
            self.rows, participants=[p.as_participant() for p in self.people],
            sources=self.sources, summary=self.summary,
            subject_status={p.subject: p.status for p in self.people},
            form=form, since=since, period=self.period, updated=self.updated,
        )


def _since_rows(unit: Unit, since: datetime) -> list[ResultResource]:
    """The results written after ``since``, and every result of the participants among them
    who have a participant-level one (the visit results it derives from are among these)."""
    changed = [as_resource(r) for r in unit.results(since=since)]
    owners = {r.subject for r in changed if r.kind == PARTICIPANT_ENDPOINT}
    keys = {r.key for r in changed}
    more = [as_resource(r) for r in unit.results(subjects=sorted(owners)) if r.key not in keys]
    return sorted([*changed, *more], key=lambda r: r.key)
