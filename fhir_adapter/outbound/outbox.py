"""The durable outbox sender: claims queued result changes, delivers them, records each outcome."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from fhir_adapter.outbound.client import FhirClient, Rejected, Transient
from fhir_adapter.outbound.retry import RetryPolicy

__all__ = [
    "BundleBuilder",
    "Clock",
    "DeliveryTally",
    "OutboxItem",
    "OutboxRepository",
    "Sender",
]

Clock = Callable[[], datetime]
#: result keys -> the transaction Bundle of their current versions (None: every result).
BundleBuilder = Callable[[Sequence[str] | None], dict[str, Any]]

#: statuses that may concern one result only: worth splitting the batch to find which.
_CONTENT_STATUSES = frozenset({400, 409, 412, 422})


class OutboxRepository(Protocol):
    """What the sender needs from the database; each method is one database transaction.

    Rows are objects with the attributes of ``OutboxItem``."""

    def claim_outbox(
        self, *, now: datetime, lease_until: datetime, limit: int, due_only: bool = True
    ) -> Sequence[Any]: ...

    def outbox_delivered(self, ids: Sequence[int], *, at: datetime) -> None: ...

    def outbox_retry(
        self, ids: Sequence[int], *, error: str, next_attempt_at: datetime
    ) -> None: ...

    def outbox_failed(self, ids: Sequence[int], *, error: str) -> None: ...

    def enqueue_all_results(self, *, at: datetime) -> int: ...

    def outbox_rows(
        self, *, states: Sequence[str] = ("pending", "failed"), limit: int | None = None
    ) -> Sequence[Any]: ...


@dataclass(frozen=True)
class OutboxItem:
    """One queued change of one endpoint result."""

    id: int
    result_key: str
    version: int
    state: str
    attempts: int
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime | None = None
    delivered_at: datetime | None = None
    lease_until: datetime | None = None

    @classmethod
    def of(cls, row: Any) -> OutboxItem:
        names = cls.__dataclass_fields__
        values: dict[str, Any] = {name: getattr(row, name, None) for name in names}
        return cls(**values)


@dataclass
class DeliveryTally:
    """What a run of the sender did."""

    delivered: int = 0  # outbox rows delivered
    failed: int = 0  # outbox rows refused by the server
    requests: int = 0  # transactions POSTed
    resources: int = 0  # Bundle entries the server accepted
    errors: list[str] = field(default_factory=list)


@dataclass
class _Batch:
    groups: dict[str, list[int]]  # result key -> outbox row ids
    attempts: int  # the most tries any of its rows already had

    def ids(self, keys: Sequence[str] | None = None) -> list[int]:
        chosen = self.groups if keys is None else keys
        return [i for key in chosen for i in self.groups[key]]


_ENTRY = re.compile(r"Bundle\.entry\[(\d+)\]")


def _named_results(outcome: dict[str, Any] | None, bundle: dict[str, Any],
                   keys: Sequence[str]) -> list[str]:
    """The result keys whose entries the server's OperationOutcome names (its issues'
    ``expression``, FHIR R4 operationoutcome: Bundle.entry[n]...); entries that carry no result
    (the study, a Patient) name none."""
    wanted = set(keys)
    found: list[str] = []
    entries = bundle.get("entry") or []
    for issue in (outcome or {}).get("issue") or []:
        for text in [*(issue.get("expression") or []), *(issue.get("location") or [])]:
            match = _ENTRY.match(str(text))
            if match is None or int(match.group(1)) >= len(entries):
                continue
            resource = entries[int(match.group(1))].get("resource") or {}
            for identifier in resource.get("identifier") or []:
                value = identifier.get("value") if isinstance(identifier, dict) else None
                if value in wanted and value not in found:
                    found.append(value)
    return found


def error_text(exc: Transient | Rejected) -> str:
    """What goes into ``outbox.last_error``: JSON with the status, a sentence and the outcome."""
    outcome = exc.outcome if isinstance(exc, Rejected) else None
    return json.dumps({"status": exc.status, "message": exc.message, "outcome": outcome})


class Sender:
    """Delivers the outbox through ``client``, one batch of result keys per transaction."""

    def __init__(
        self,
        outbox: OutboxRepository,
        build: BundleBuilder,
        client: FhirClient,
        *,
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
        batch_size: int = 100,
        lease: timedelta | None = None,
        deadline: float | None = None,
        on_retry: Callable[[str], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.outbox = outbox
        self.build = build
        self.client = client
        self.policy = policy or RetryPolicy()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.sleep = sleep
        self.batch_size = batch_size
        timeouts = client.timeouts
        self.lease = lease or timedelta(seconds=2 * (timeouts.connect + timeouts.read) + 60)
        self.tally = DeliveryTally()
        #: a ``monotonic()`` instant no wait may pass (``push --timeout``); None: no bound
        self.deadline = deadline
        self.on_retry = on_retry
        self.monotonic = monotonic
        self.timed_out = False

    def claim(self, *, due_only: bool) -> _Batch | None:
        """Lease the oldest pending rows (they stay pending if this process dies)."""
        now = self.clock()
        rows = self.outbox.claim_outbox(
            now=now, lease_until=now + self.lease, limit=self.batch_size, due_only=due_only
        )
        if not rows:
            return None
        groups: dict[str, list[int]] = {}
        for item in map(OutboxItem.of, rows):
            groups.setdefault(item.result_key, []).append(item.id)
        return _Batch(groups, max(OutboxItem.of(r).attempts or 0 for r in rows))

    def deliver(self, batch: _Batch, *, wait: bool) -> bool:
        """Deliver one claimed batch; False when a transient failure leaves rows pending.

        ``wait``: retry here, sleeping the backoff, up to ``policy.max_attempts`` tries (a push);
        else make one try and let the rows come due again later (the background worker)."""
        attempt = batch.attempts
        tries = 0
        while True:
            attempt += 1
            tries += 1
            try:
                return self._send(batch, list(batch.groups), attempt)
            except Transient as exc:
                # a push waits by its own tries: the stored count (earlier pushes, the worker)
                # would have a fresh push sleep the longest backoff at once
                delay = self.policy.delay(tries if wait else attempt, exc.retry_after)
                self._retry_later(batch.ids(), exc, delay)
                if not wait or tries >= self.policy.max_attempts:
                    return False
                if self.deadline is not None and self.monotonic() + delay > self.deadline:
                    self.timed_out = True
                    return False
                if self.on_retry is not None:
                    when = (self.clock() + timedelta(seconds=delay)).astimezone(UTC)
                    self.on_retry(f"try {tries} failed: {exc.message}; next try in "
                                  f"{delay:.1f} s, at {when:%H:%M:%S}Z")
                self.sleep(delay)

    def _send(self, batch: _Batch, keys: list[str], attempt: int, *, depth: int = 0) -> bool:
        """POST the keys' Bundle. A refusal that may concern one result is that result's final
        word, never retried: the results the server's OperationOutcome names fail, the others
        go once more together; when it names none (or the others are refused again), each goes
        alone, once. So a server that refuses everything gets about one request per result.
        True when every row of ``keys`` is settled (delivered or failed)."""
        bundle = self.build(keys)
        entries = len(bundle.get("entry") or [])
        try:
            if entries:
                self.tally.requests += 1
                self.client.post_transaction(bundle)
        except Rejected as exc:
            if len(keys) > 1 and exc.status in _CONTENT_STATUSES:
                named = _named_results(exc.outcome, bundle, keys) if depth == 0 else []
                if named and len(named) < len(keys):
                    self._fail(batch, named, exc)
                    rest = [k for k in keys if k not in named]
                    return self._send_part(batch, rest, attempt, depth=1)
                settled = [self._send_part(batch, [key], attempt, depth=2) for key in keys]
                return all(settled)
            self._fail(batch, keys, exc)
            return True
        ids = batch.ids(keys)
        self.outbox.outbox_delivered(ids, at=self.clock())
        self.tally.delivered += len(ids)
        self.tally.resources += entries
        return True

    def _fail(self, batch: _Batch, keys: list[str], exc: Rejected) -> None:
        ids = batch.ids(keys)
        self.outbox.outbox_failed(ids, error=error_text(exc))
        self.tally.failed += len(ids)
        self.tally.errors.append(exc.message)

    def _send_part(self, batch: _Batch, keys: list[str], attempt: int, *, depth: int) -> bool:
        try:
            return self._send(batch, keys, attempt, depth=depth)
        except Transient as exc:  # this part of a refused batch waits for a later try
            self._retry_later(batch.ids(keys), exc, self.policy.delay(attempt, exc.retry_after))
            return False

    def _retry_later(self, ids: list[int], exc: Transient, delay: float) -> None:
        when = self.clock() + timedelta(seconds=delay)
        self.outbox.outbox_retry(ids, error=error_text(exc), next_attempt_at=when)
        if not self.tally.errors or self.tally.errors[-1] != exc.message:
            self.tally.errors.append(exc.message)
