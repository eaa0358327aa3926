"""Publication: results recomputed with the data, published as FHIR Bundles, read and searched.

Between the pipeline (which calls ``recompute`` and ``queue`` inside its writes) and the stages
it composes: the endpoints (trial), the result builder (results), the store.

    Publication
      recomputer  recompute, queue, recompute_stale, recompute_all   (recompute.py)
      summaries   the study summary, kept per participant            (summary.py)
      bundles     whole, incremental, push, for_subjects, without_results   (bundles.py)
      search      read, search                                       (search.py)
"""

from __future__ import annotations

from fhir_adapter.publication.bundles import ResultBundles
from fhir_adapter.publication.pseudonyms import PseudonymKey, configured_key
from fhir_adapter.publication.recompute import Recomputer, RecomputeReport
from fhir_adapter.publication.search import ResultSearch
from fhir_adapter.publication.summary import Summaries
from fhir_adapter.results.study import study_id
from fhir_adapter.store import Store
from fhir_adapter.store.outbox import OutboxStore
from fhir_adapter.terminology import Terminology
from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition

__all__ = ["Publication", "RecomputeReport", "configured_key"]


class Publication:
    """The results side of one store, each part by composition."""

    def __init__(self, store: Store, study: StudyDefinition, catalogue: AnalyteCatalogue, *,
                 pseudonym_key: bytes | None = None,
                 terminology: Terminology | None = None) -> None:
        self.store = store
        self.study = study
        self.key = PseudonymKey(store, study, catalogue, pseudonym_key,
                                terminology=terminology)
        self.recomputer = Recomputer(store, study, catalogue, self.key)
        self.summaries = Summaries(self.recomputer)
        self.bundles = ResultBundles(store, self.key, self.summaries)
        self.search = ResultSearch(store, self.key, self.bundles)
        #: the delivery queue the sender (fhir_adapter.outbound) claims from
        self.outbox = OutboxStore(store)

    def study_id(self) -> str:
        """The id of the adapter's ResearchStudy (``ResearchStudy/{id}/$endpoint-results``)."""
        return study_id(self.study)

    def csv(self) -> str:
        """The tidy table, one row per participant x analyte x visit."""
        builder = self.key.builder(self.key.for_reading())
        with self.store.read() as unit:
            records = unit.records()
        return builder.to_csv([self.recomputer.readable_endpoints(r) for r in records],
                              records=records)
