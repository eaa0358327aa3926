"""`push` and `outbox`: deliver what is queued now, and list what is still pending or failed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from fhir_adapter.errors import ConfigError
from fhir_adapter.outbound.client import FhirClient, Timeouts
from fhir_adapter.outbound.outbox import (
    BundleBuilder,
    Clock,
    OutboxItem,
    OutboxRepository,
    Sender,
)
from fhir_adapter.outbound.retry import RetryPolicy
from fhir_adapter.outbound.smart import SmartAuth

__all__ = ["OutboxEntry", "PushReport", "outbox_listing", "push", "render_listing"]


@dataclass
class PushReport:
    """The outcome of one ``push``, counted in queued result changes (outbox rows)."""

    to_url: str
    enqueued: int = 0  # rows queued again by --all
    delivered: int = 0
    failed: int = 0
    pending: int = 0  # left for a later try
    held: int = 0  # pending rows another sender (a push or a server) holds and delivers
    requests: int = 0  # transactions POSTed
    resources: int = 0  # Bundle entries the server accepted
    errors: list[str] = field(default_factory=list)
    timeout: float | None = None  # the bound of the run, when it stopped the run

    @property
    def exit_code(self) -> int:
        """0 when everything is delivered; 1 when something failed or is still pending."""
        return 0 if not self.failed and not self.pending else 1

    def lines(self) -> list[str]:
        out = [f"push to {self.to_url}: {self.delivered} delivered, {self.failed} failed, "
               f"{self.pending} pending ({self.requests} requests, "
               f"{self.resources} resources)"]
        if self.enqueued:
            out.append(f"--all: {self.enqueued} results queued again")
        if self.held:
            out.append(f"  {self.held} result changes are being delivered by another sender "
                       "at the same time (another push, or the server's worker)")
        out.extend(f"  {message}" for message in self.errors)
        if self.timeout is not None:
            out.append(f"  stopped by --timeout {self.timeout:g} s: {self.pending} result "
                       "changes stay queued; a next push tries them at once")
        elif self.pending:
            out.append("  pending deliveries are retried by the next push or the server's worker")
        if self.failed:
            out.append("  `fhir-adapter outbox` lists the failures with the server's answer; once "
                       "the cause is fixed, `push --all` sends everything again")
        return out


def push(
    outbox: OutboxRepository,
    build: BundleBuilder,
    *,
    to_url: str | None,
    token: str | None = None,
    auth: SmartAuth | None = None,
    all: bool = False,  # noqa: A002 - the name of the command line flag
    session: requests.Session | None = None,
    policy: RetryPolicy | None = None,
    timeouts: Timeouts | None = None,
    clock: Clock | None = None,
    sleep: Callable[[float], None] = time.sleep,
    batch_size: int = 100,
    timeout: float | None = None,
    progress: Callable[[str], None] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> PushReport:
    """Deliver every pending result change now (``all``: every result, again) to ``to_url``.

    Transient failures are retried here with backoff; when the server stays unreachable the rest
    stays pending, in the database, for the next push or the background worker. ``timeout``
    bounds the run (no wait goes past it); ``progress`` hears each delivered batch and each
    retry with its reason and its time."""
    if not to_url:
        raise ConfigError("no research server to push to: give --to URL or set "
                          "FHIR_ADAPTER_PUSH_URL")
    clock = clock or (lambda: datetime.now(UTC))
    client = FhirClient(to_url, token=token, auth=auth, session=session, timeouts=timeouts,
                        clock=clock)
    deadline = monotonic() + timeout if timeout is not None else None
    sender = Sender(outbox, build, client, policy=policy, clock=clock, sleep=sleep,
                    batch_size=batch_size, deadline=deadline, on_retry=progress,
                    monotonic=monotonic)
    report = PushReport(to_url=client.base_url)
    if all:
        report.enqueued = outbox.enqueue_all_results(at=clock())
    while True:
        if deadline is not None and monotonic() >= deadline:
            sender.timed_out = True
            break
        batch = sender.claim(due_only=False)
        if batch is None:
            break
        delivered = sender.deliver(batch, wait=True)
        if progress is not None:
            t = sender.tally
            progress(f"{t.delivered} delivered, {t.failed} failed so far ({t.requests} requests)")
        if not delivered:
            break
    tally = sender.tally
    report.delivered, report.failed = tally.delivered, tally.failed
    report.requests, report.resources, report.errors = tally.requests, tally.resources, tally.errors
    # what is left pending and leased was claimed by another sender (this one's claims are
    # all settled by now): that sender delivers it
    now = clock()
    left = [OutboxItem.of(row) for row in outbox.outbox_rows(states=("pending",))]
    report.held = sum(1 for item in left if item.lease_until is not None
                      and _utc(item.lease_until) > now)
    report.pending = len(left) - report.held
    if sender.timed_out:
        report.timeout = timeout
    return report


@dataclass(frozen=True)
class OutboxEntry:
    """One line of ``fhir-adapter outbox``: a queued change, its state and why."""

    item: OutboxItem
    status: int | None  # the HTTP status of the last try, if there was an answer
    reason: str | None  # one sentence
    outcome: dict[str, Any] | None  # the server's OperationOutcome, for a refusal


def outbox_listing(
    outbox: OutboxRepository, *, states: Sequence[str] = ("pending", "failed")
) -> list[OutboxEntry]:
    """The queued result changes in ``states``, oldest first, with the reason of the last try."""
    return [_entry(OutboxItem.of(row)) for row in outbox.outbox_rows(states=tuple(states))]


def _entry(item: OutboxItem) -> OutboxEntry:
    if not item.last_error:
        return OutboxEntry(item, None, None, None)
    try:
        data = json.loads(item.last_error)
    except ValueError:
        return OutboxEntry(item, None, item.last_error, None)
    if not isinstance(data, dict):
        return OutboxEntry(item, None, item.last_error, None)
    outcome = data.get("outcome") if isinstance(data.get("outcome"), dict) else None
    return OutboxEntry(item, data.get("status"), data.get("message"), outcome)


def render_listing(entries: Sequence[OutboxEntry]) -> list[str]:
    """Lines for a terminal: one per queued change, then a count per state."""
    if not entries:
        return ["outbox: nothing pending or failed"]
    out = []
    for entry in entries:
        item = entry.item
        when = ""
        if item.state == "pending" and item.next_attempt_at is not None:
            when = f" next try {_utc(item.next_attempt_at):%Y-%m-%dT%H:%M:%SZ}"
        line = f"{item.state:<9} {item.result_key} v{item.version} tries {item.attempts}{when}"
        if entry.reason:
            line += f": {entry.reason}"
        out.append(line)
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.item.state] = counts.get(entry.item.state, 0) + 1
    out.append(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    return out


def _utc(moment: datetime) -> datetime:
    """A stored instant in UTC (a database without time zones gives it back naive, in UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
