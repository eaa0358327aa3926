"""The data manager's workspace over a Pipeline: a snapshot, made again only when data changed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fhir_adapter.errors import AdapterError
from fhir_adapter.paths import mappings_dir
from fhir_adapter.pipeline.refusals import REFUSED
from fhir_adapter.results import Pseudonymiser
from fhir_adapter.results.vocab import decimal_text
from fhir_adapter.workspace import AuditEntry, QueryRules, Snapshot, build_snapshot
from fhir_adapter.workspace.snapshot import Refusal, without_sender_text

__all__ = ["AUDIT_ROWS", "Workspace", "audit_entry", "workspace_of"]

#: The newest audit rows the workspace reads (the audit page and the refused queries).
AUDIT_ROWS = 5000
#: How often a warming thread looks whether the data changed, and how long after the last
#: page it keeps doing so (nobody looking: no work).
WARM_EVERY_SECONDS = 3.0
WARM_WHILE_USED_SECONDS = 900.0


class Workspace:
    """One per Pipeline: the snapshot of its store, kept while the store's data stamp holds."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self._cached: tuple[tuple[Any, ...], Snapshot] | None = None
        #: per participant, the store's record stamp the cached snapshot was read at
        self._record_stamps: dict[str, tuple[Any, ...]] = {}
        #: the newest audit rows read, by id, newest first (audit rows never change)
        self._audit: dict[int, AuditEntry] = {}
        self._lock = threading.Lock()
        self._rules: QueryRules | None = None
        self._used = 0.0  # monotonic time of the last snapshot asked for
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: made for each snapshot the warming thread builds (the dashboard's shared pages)
        self.prepare: Callable[[Snapshot], None] | None = None

    @property
    def rules(self) -> QueryRules:
        if self._rules is None:
            settings = self.pipeline.settings
            folder = getattr(settings, "mappings_dir", None) or mappings_dir()
            self._rules = QueryRules.from_file(folder / "queries.toml")
        return self._rules

    def snapshot(self) -> Snapshot:
        """The snapshot of the data as they are now (made again only when they changed)."""
        self._used = time.monotonic()
        return self._current()

    def _current(self) -> Snapshot:
        store = self.pipeline.store
        with store.read() as unit:
            stamp = unit.data_stamp()
        cached = self._cached
        if cached is not None and cached[0] == stamp:
            return cached[1]
        with self._lock:  # one build at a time; a second caller finds the first's done
            cached = self._cached
            if cached is not None and cached[0] == stamp:
                return cached[1]
            snapshot, records = self._build()
            self._cached, self._record_stamps = (stamp, snapshot), records
            return snapshot

    def start_warming(self, *, at_once: bool = False) -> threading.Thread:
        """A thread that makes the next snapshot as soon as the data change, while pages are
        being looked at, so that the first page after a change need not wait for it
        (``at_once``: as if a page had just been looked at, so it makes the first one too)."""
        if at_once:
            self._used = time.monotonic()
        self._stop = threading.Event()
        thread = threading.Thread(target=self._warm, args=(self._stop,),
                                  name="workspace-warmer", daemon=True)
        thread.start()
        self._thread = thread
        return thread

    @property
    def warming(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop_warming(self, *, wait: float = 10.0) -> None:
        """Stop the warming thread, waiting up to ``wait`` seconds for a build under way."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=wait)

    def _warm(self, stop: threading.Event) -> None:
        prepared: Snapshot | None = None
        while not stop.wait(WARM_EVERY_SECONDS):
            if not self._used or time.monotonic() - self._used > WARM_WHILE_USED_SECONDS:
                continue
            try:
                snapshot = self._current()
            except AdapterError:  # a database that is away now: the next round
                continue
            if snapshot is not prepared and self.prepare is not None:
                self.prepare(snapshot)
                prepared = snapshot

    def _build(self) -> tuple[Snapshot, dict[str, tuple[Any, ...]]]:
        """The snapshot of now and the record stamps it was read at: only the records of
        participants whose stamp changed since the cached snapshot are read again (the others
        are that snapshot's)."""
        pipeline = self.pipeline
        pseudonyms = Pseudonymiser(pipeline.publication.key.for_reading())
        previous = self._cached[1] if self._cached is not None else None
        with pipeline.store.read() as unit:
            stamps = unit.record_stamps()
            kept = {} if previous is None else {
                s: view.record for s in stamps
                if stamps[s] == self._record_stamps.get(s)
                and (view := previous.participant(s)) is not None}
            changed = [s for s in stamps if s not in kept]
            fresh = {r.participant.subject: r for r in unit.records(changed)} if changed else {}
            statuses = {p.subject: p.status for p in unit.participants()}
            ids = unit.audit_row_ids(limit=AUDIT_ROWS)
            known = self._audit
            added = {r.id: audit_entry(r)
                     for r in unit.audit_rows_by_id([i for i in ids if i not in known])}
            faults = unit.recompute_faults()
        self._audit = {i: known[i] if i in known else added[i] for i in ids if i in known
                       or i in added}
        audit = list(self._audit.values())
        records = [kept[s] if s in kept else fresh[s] for s in stamps]  # in subject order
        return build_snapshot(records, statuses, pipeline.study, pipeline.mapper.catalogue,
                              audit=audit, pseudonym=pseudonyms.id, number=decimal_text,
                              previous=previous, faults=faults), stamps


def audit_entry(row: Any) -> AuditEntry:
    """An audit row: its ``Type/id`` keys apart from the descriptions of refused entries."""
    keys = tuple(str(r) for r in row.resources if isinstance(r, str))
    refusals = []
    for item in row.resources:
        found = item.get(REFUSED) if isinstance(item, dict) else None
        if isinstance(found, dict) and found.get("subject"):
            try:
                at: datetime | None = datetime.fromisoformat(str(found.get("at")))
            except ValueError:
                at = None
            if at is not None and at.tzinfo is None:
                at = None
            reason = without_sender_text(str(found.get("reason") or ""))
            refusals.append(Refusal(str(found["subject"]), str(found.get("analyte") or ""), at,
                                    reason, row.who, row.at))
    return AuditEntry(row.at, row.who, row.action, keys, without_sender_text(row.outcome),
                      tuple(refusals))


def workspace_of(pipeline: Any) -> Workspace:
    """The pipeline's workspace (made on first use)."""
    found = getattr(pipeline, "_workspace", None)
    if found is None:
        found = Workspace(pipeline)
        pipeline._workspace = found
    return found
