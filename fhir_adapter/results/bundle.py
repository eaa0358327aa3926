"""The result Bundle: full or incremental, ``collection`` (pull) or ``transaction`` (push)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from fhir_adapter.errors import ReferenceError_, Where
from fhir_adapter.fhir import rewrite_references
from fhir_adapter.terminology import Terminology
from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition
from fhir_adapter.trial.model import (
    Participant,
    ParticipantEndpoints,
    ParticipantRecord,
    StudySummary,
    VisitResult,
)

from . import study as study_resources
from .observations import (
    participant_observation,
    participant_result_id,
    visit_observation,
    visit_result_id,
)
from .reports import measure_report, provenance
from .sources import pseudonymous_source
from .table import to_csv
from .vocab import BASE, Pseudonymiser, fhir_time, identifier_id

__all__ = [
    "ENDPOINT_RESULT", "PARTICIPANT_ENDPOINT", "RESULT_STATUSES", "BundleForm", "ResultBuilder",
    "ResultResource", "result_id", "summary_period", "with_derived_from",
]

BundleForm = Literal["collection", "transaction"]
RESULT_STATUSES = frozenset({"final", "amended", "entered-in-error"})
ENDPOINT_RESULT = "endpoint-result"
PARTICIPANT_ENDPOINT = "participant-endpoint"


@dataclass(frozen=True, slots=True)
class ResultResource:
    """One endpoint result as stored: a row of the ``endpoint_result`` table.

    ``kind`` is ``endpoint-result`` (visit level) or ``participant-endpoint``; ``resource`` is
    the Observation as built (status ``final``); ``status`` and ``last_updated`` are the stored
    state, applied when the Bundle is made.
    """

    key: str
    kind: str
    subject: str
    resource: dict[str, Any]
    status: str = "final"
    last_updated: datetime | None = None
    version: int | None = None  # of the stored row: the published meta.versionId

    def with_state(self, status: str, last_updated: datetime | None,
                   version: int | None = None) -> ResultResource:
        if status not in RESULT_STATUSES:
            raise ValueError(f"not a result status: {status!r}")
        return replace(self, status=status, last_updated=last_updated, version=version)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ResultBuilder:
    """Builds every resource of the result contract (RESULTS.md) as plain JSON dicts.

    ``pseudonym_key`` is the adapter's secret for source ids (keep it stable: it makes the ids
    stable); ``clock`` gives the Bundle timestamp and the Provenance's recorded time;
    ``full_url_base`` prefixes ``fullUrl`` in a ``collection`` (the server's FHIR base);
    ``terminology`` reads which analyte a source Observation is (with the site code maps the
    adapter reads its inputs with; the catalogue alone when not given).
    """

    def __init__(
        self,
        study: StudyDefinition,
        catalogue: AnalyteCatalogue,
        *,
        pseudonym_key: bytes,
        clock: Callable[[], datetime] = _utc_now,
        full_url_base: str = BASE,
        terminology: Terminology | None = None,
    ) -> None:
        self.study = study
        self.catalogue = catalogue
        self.terminology = terminology or Terminology(catalogue, study)
        self.pseudonyms = Pseudonymiser(pseudonym_key)
        self.clock = clock
        self.full_url_base = full_url_base.rstrip("/")

    # -- single resources -------------------------------------------------------------------

    def stamped_study_resources(self, updated: datetime) -> list[dict[str, Any]]:
        """The study resources as the result Bundle has them, ``updated`` the newest write of
        any result."""
        return [_stamped(r, updated) for r in self.study_resources()]

    def study_resources(self) -> list[dict[str, Any]]:
        """The ResearchStudy and its schedule (PlanDefinition)."""
        return [study_resources.research_study(self.study), study_resources.schedule(self.study)]

    def subject_resources(
        self, participant: Participant, status: str = "on-study"
    ) -> list[dict[str, Any]]:
        """The pseudonymous Patient and ResearchSubject of one participant."""
        return [
            study_resources.patient(participant),
            study_resources.research_subject(self.study, participant, status),
        ]

    def visit_resource(self, result: VisitResult) -> ResultResource:
        resource = visit_observation(result, self.catalogue, self.pseudonyms.reference)
        return ResultResource(result.key, ENDPOINT_RESULT, result.subject, resource)

    def endpoint_resources(self, endpoints: ParticipantEndpoints) -> list[ResultResource]:
        """Every result of one participant, status ``final``: hash them (``content_hash``),
        compare with the store, then set the stored state with ``ResultResource.with_state``."""
        out = [self.visit_resource(r) for r in endpoints.visit_results]
        out += [
            ResultResource(r.key, PARTICIPANT_ENDPOINT, r.subject,
                           participant_observation(r, self.pseudonyms.reference))
            for r in endpoints.participant_results
        ]
        return out

    def source_id(self, key: str) -> str:
        """The pseudonymous id of a stored resource key (``Observation/<adapter id>``)."""
        return self.pseudonyms.id(key)

    # -- the Bundle --------------------------------------------------------------------------

    def bundle(
        self,
        results: Iterable[ResultResource],
        *,
        participants: Iterable[Participant],
        sources: Mapping[str, dict[str, Any]],
        summary: StudySummary | None = None,
        subject_status: Mapping[str, str] | None = None,
        form: BundleForm = "collection",
        since: datetime | None = None,
        period: tuple[datetime, datetime] | None = None,
        updated: Mapping[str, datetime] | None = None,
    ) -> dict[str, Any]:
        """The result Bundle.

        Every resource carries ``meta.lastUpdated`` and ``meta.versionId``: a result its
        stored row's, a source the stored Observation's, a participant's Patient and
        ResearchSubject the newest write of its results (``updated``: per participant, of
        every stored result), and the study, its schedule, the summary and the Provenance the
        newest write of any result (a later write makes a new version of each). Without
        ``updated``, the results given say it.

        ``results`` are all stored results (withdrawn ones included, as ``entered-in-error``);
        with ``since`` only those updated after it are sent, plus what they need so that every
        reference resolves (their participants, the visit results a participant result derives
        from, the source Observations). ``sources`` maps ``Observation/<adapter id>`` to the
        stored Observation as received; only those referenced are published, pseudonymised.
        The summary's period is that of every result given, or ``period`` (``summary_period``
        of every stored result) when only some are given: with ``since``, the results written
        after it and those of their participants.
        """
        if form not in ("collection", "transaction"):
            raise ValueError(f"a result Bundle is a collection or a transaction, not {form!r}")
        everything = list(results)
        chosen = _select(everything, since)
        now = self.clock()
        observations = [_stated(r, now) for r in chosen]
        subjects = sorted({r.subject for r in chosen})
        people = {p.subject: p for p in participants}
        if since is None:
            subjects = sorted(set(subjects) | set(people))
        newest: dict[str, datetime] = dict(updated or {})
        if updated is None:
            for result in everything:
                if result.last_updated is not None:
                    newest[result.subject] = max(result.last_updated,
                                                 newest.get(result.subject, result.last_updated))
        overall = max(newest.values(), default=now)
        resources = [_stamped(r, overall) for r in self.study_resources()]
        status_of = subject_status or {}
        for subject in subjects:
            person = people.get(subject, Participant(subject))
            resources += [_stamped(r, newest.get(subject, overall)) for r in
                          self.subject_resources(person, status_of.get(subject, "on-study"))]
        resources += observations
        source_resources = self._sources(chosen, sources)
        resources += source_resources
        if summary is not None:
            span = period if period is not None else summary_period(everything)
            resources.append(_stamped(self._summary(summary, span, now), overall))
        targets = [f"Observation/{o['id']}" for o in observations]
        if targets:
            entities = [f"Observation/{s['id']}" for s in source_resources]
            resources.append(_stamped(provenance(targets, entities, recorded=now), overall))
        if form == "transaction":
            return self._transaction(resources, now)
        return self._collection(resources, now)

    def published_part(
        self,
        results: Iterable[ResultResource],
        *,
        participants: Iterable[Participant],
        sources: Mapping[str, dict[str, Any]],
        subject_status: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """What the whole Bundle holds of these participants and results, each resource as
        it is there: their Patients and ResearchSubjects, the results, their sources (no
        study resource, summary or Provenance: those are of the whole). For an export that
        writes each resource at once, the results' stored state is set on a shallow copy."""
        chosen = list(results)
        now = self.clock()
        status_of = subject_status or {}
        people = {p.subject: p for p in participants}
        out: list[dict[str, Any]] = []
        newest: dict[str, datetime] = {}
        for result in chosen:
            if result.last_updated is not None:
                newest[result.subject] = max(result.last_updated,
                                             newest.get(result.subject, result.last_updated))
        for subject in sorted({r.subject for r in chosen} | set(people)):
            person = people.get(subject, Participant(subject))
            out += [_stamped(r, newest.get(subject, now)) for r in
                    self.subject_resources(person, status_of.get(subject, "on-study"))]
        out += [_stated_shallow(r, now) for r in chosen]
        out += self._sources(chosen, sources)
        return out

    def to_csv(
        self,
        endpoints: Iterable[ParticipantEndpoints],
        *,
        records: Iterable[ParticipantRecord] = (),
    ) -> str:
        """The tidy table: one row per participant x analyte x visit (see ``table.to_csv``);
        ``records`` give Day 0 and the display-only values (lab-reported eGFR)."""
        return to_csv(
            endpoints,
            study=self.study,
            pseudonyms=self.pseudonyms,
            records=records,
            catalogue=self.catalogue,
        )

    # -- helpers -----------------------------------------------------------------------------

    def _sources(
        self, chosen: list[ResultResource], sources: Mapping[str, dict[str, Any]]
    ) -> list[dict[str, Any]]:
        by_reference = {self.pseudonyms.reference(k): k for k in sources}
        out: dict[str, dict[str, Any]] = {}
        for result in chosen:
            for i, derived in enumerate(result.resource.get("derivedFrom", [])):
                reference = derived.get("reference", "")
                if reference in out:
                    continue
                key = by_reference.get(reference)
                if key is None and result.kind != ENDPOINT_RESULT:
                    continue  # a participant endpoint's visit-level result, published as such
                if key is None:
                    raise ReferenceError_(
                        f"result {result.key}: its source {reference} is not among the stored "
                        "Observations",
                        where=Where(element=f"Observation.derivedFrom[{i}]"),
                    )
                out[reference] = pseudonymous_source(
                    key, sources[key], result.subject, self.pseudonyms, self.terminology
                )
        return list(out.values())

    def _summary(
        self, summary: StudySummary, period: tuple[datetime, datetime] | None, now: datetime
    ) -> dict[str, Any]:
        return measure_report(
            self.study, summary, date=now, period=period or (now, now), catalogue=self.catalogue
        )

    def _collection(self, resources: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
        entries = [
            {"fullUrl": f"{self.full_url_base}/{r['resourceType']}/{r['id']}", "resource": r}
            for r in resources
        ]
        return _bundle("collection", entries, now)

    def _transaction(self, resources: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
        urns = {
            _local(r): f"urn:uuid:{identifier_id(r['resourceType'], r['id'])}" for r in resources
        }
        entries = []
        for resource in resources:
            local = _local(resource)
            body = rewrite_references(resource, urns)  # a copy, references to entries
            identifiers = body.get("identifier") or []
            if identifiers:
                body.pop("id")
                first = identifiers[0]
                url = f"{local.split('/')[0]}?identifier=" + quote(
                    f"{first['system']}|{first['value']}", safe=":/|"
                )
            else:  # Provenance: no identifier to match on, a stable id instead
                url = local
            entries.append(
                {"fullUrl": urns[local], "resource": body, "request": {"method": "PUT", "url": url}}
            )
        return _bundle("transaction", entries, now)


def result_id(key: str, kind: str) -> str:
    """The published id of a stored result, from its key (identifier value) and kind."""
    return visit_result_id(key) if kind == ENDPOINT_RESULT else participant_result_id(key)


def summary_period(results: Iterable[ResultResource]) -> tuple[datetime, datetime] | None:
    """The first and last effective time of these results (None: none has one)."""
    times = [
        datetime.fromisoformat(r.resource["effectiveDateTime"])
        for r in results
        if "effectiveDateTime" in r.resource
    ]
    return (min(times), max(times)) if times else None


def _local(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def _select(results: list[ResultResource], since: datetime | None) -> list[ResultResource]:
    if since is None:
        return results
    chosen = [r for r in results if r.last_updated is None or r.last_updated > since]
    return with_derived_from(chosen, results)


def with_derived_from(chosen: list[ResultResource],
                      pool: Iterable[ResultResource]) -> list[ResultResource]:
    """``chosen``, then the visit-level results of ``pool`` that a chosen participant-level
    result derives from and that are not chosen yet (a participant result never travels
    without what it is derived from)."""
    wanted = {r.key for r in chosen}
    by_id = {r.resource.get("id"): r for r in pool if r.kind == ENDPOINT_RESULT}
    closed = list(chosen)
    for result in chosen:
        if result.kind != PARTICIPANT_ENDPOINT:
            continue
        for derived in result.resource.get("derivedFrom", []):
            needed = by_id.get(str(derived.get("reference", "")).split("/")[-1])
            if needed is not None and needed.key not in wanted:
                wanted.add(needed.key)
                closed.append(needed)
    return closed


def _stated(result: ResultResource, now: datetime) -> dict[str, Any]:
    resource = copy.deepcopy(result.resource)
    resource["status"] = result.status
    meta = resource.setdefault("meta", {})
    meta["versionId"] = str(result.version or 1)
    meta["lastUpdated"] = fhir_time(result.last_updated or now)
    return resource


def _stated_shallow(result: ResultResource, now: datetime) -> dict[str, Any]:
    """``_stated`` for a resource written out at once and never changed: the nested parts
    are shared with the stored one, only ``status`` and ``meta`` are new."""
    meta = dict(result.resource.get("meta") or {})
    meta["versionId"] = str(result.version or 1)
    meta["lastUpdated"] = fhir_time(result.last_updated or now)
    return {**result.resource, "status": result.status, "meta": meta}


def _stamped(resource: dict[str, Any], at: datetime) -> dict[str, Any]:
    """``resource`` with ``meta.lastUpdated`` ``at`` and a versionId that grows with it (its
    milliseconds since 1970): made, not stored, it changes only when what it is made of is
    written again."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(int(at.timestamp() * 1000))
    meta["lastUpdated"] = fhir_time(at)
    rest = {k: v for k, v in resource.items() if k not in ("resourceType", "id", "meta")}
    return {"resourceType": resource["resourceType"], "id": resource["id"], "meta": meta, **rest}


def _bundle(kind: str, entries: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "timestamp": fhir_time(now),
        "entry": entries,
    }
