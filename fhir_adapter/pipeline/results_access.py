"""The Pipeline's results side: result Bundles, reads, searches, the CSV and the outbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from fhir_adapter.mapping import Mapper
from fhir_adapter.pipeline.result_search import read, search
from fhir_adapter.pipeline.results_flow import RecomputeReport, ResultsFlow
from fhir_adapter.results.study import study_id
from fhir_adapter.store import Store
from fhir_adapter.store.outbox import OutboxStore
from fhir_adapter.trial.definitions import StudyDefinition
from fhir_adapter.trial.model import ParticipantEndpoints

__all__ = ["ResultsAccess"]


#: Published types made of the study, its participants and the summary alone.
WITHOUT_RESULTS = frozenset({"ResearchStudy", "PlanDefinition", "Patient", "ResearchSubject",
                             "MeasureReport"})


class ResultsAccess:
    """Mixed into Pipeline: everything research servers and statisticians read (pseudonymised
    only), and the delivery outbox."""

    store: Store
    study: StudyDefinition
    mapper: Mapper
    #: the configured pseudonym key (FHIR_ADAPTER_PSEUDONYM_KEY); None: the one kept in the store
    pseudonym_key: bytes | None = None
    _results_flow: ResultsFlow | None = None
    _flow_key: bytes | None = None  # the pseudonym_key the flow was built with

    @property
    def results_flow(self) -> ResultsFlow:
        """The results side, built on first use and again when ``pseudonym_key`` is set anew."""
        if self._results_flow is None or self._flow_key != self.pseudonym_key:
            self._results_flow = ResultsFlow(self.store, self.study, self.mapper.catalogue,
                                             pseudonym_key=self.pseudonym_key)
            self._flow_key = self.pseudonym_key
        return self._results_flow

    @property
    def outbox(self) -> OutboxStore:
        """The delivery queue (fhir_adapter.outbound's OutboxRepository)."""
        return OutboxStore(self.store)

    def result_bundle(self, since: datetime | None = None) -> dict[str, Any]:
        """The ``collection`` result Bundle; with ``since`` only what changed after it."""
        return self.results_flow.bundle(since=since)

    def push_bundle(self, result_keys: Sequence[str] | None) -> dict[str, Any]:
        """The ``transaction`` Bundle of the current version of these results (None: all)."""
        return self.results_flow.bundle(form="transaction", keys=result_keys)

    def read_result(self, resource_type: str, id: str) -> dict[str, Any]:
        return read(self._published(resource_type, {"_id": [id]}), resource_type, id)

    def search_results(self, resource_type: str,
                       params: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
        return search(self._published(resource_type, params), resource_type, params)

    def study_id(self) -> str:
        """The id of the adapter's ResearchStudy (``ResearchStudy/{id}/$endpoint-results``)."""
        return study_id(self.study)

    def endpoints(self) -> list[ParticipantEndpoints]:
        return self.results_flow.endpoints()

    def results_csv(self) -> str:
        return self.results_flow.csv()

    def recompute_all(self) -> RecomputeReport:
        """Recompute every participant (e.g. after the study definition changed)."""
        return self.results_flow.recompute_all()

    def _published(self, resource_type: str,
                   params: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
        """What a read or search of ``resource_type`` looks in: the resources of the whole
        result Bundle, or, where that is enough, of a part of it made alone (the same
        resources, without reading every result): no result for the types made of the study
        and its participants, one participant's (or a few) for Observations named by
        ``subject`` or ``_id``."""
        flow = self.results_flow
        if resource_type in WITHOUT_RESULTS:
            bundle = flow.bundle(with_results=False)
        else:
            bundle = flow.bundle(subjects=flow.subjects_named(resource_type, params))
        return [e["resource"] for e in bundle.get("entry", [])]
