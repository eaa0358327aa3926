"""The background worker of `serve`: delivers the outbox as results change, in a thread."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import requests

from fhir_adapter.outbound.client import FhirClient, Timeouts
from fhir_adapter.outbound.outbox import (
    BundleBuilder,
    Clock,
    DeliveryTally,
    OutboxRepository,
    Sender,
)
from fhir_adapter.outbound.retry import RetryPolicy
from fhir_adapter.outbound.smart import push_auth
from fhir_adapter.settings import Settings

__all__ = ["PushWorker", "start_push_worker"]

log = logging.getLogger("fhir_adapter.outbound")


class PushWorker:
    """A daemon thread that delivers due outbox rows every ``interval`` seconds (or at ``wake()``).

    Each batch gets one try per round; a transient failure schedules the next try with backoff in
    the database, so a restart resumes where it stopped."""

    def __init__(
        self,
        outbox: OutboxRepository,
        build: BundleBuilder,
        client: FhirClient,
        *,
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
        interval: float = 5.0,
        batch_size: int = 100,
    ) -> None:
        self.sender = Sender(outbox, build, client, policy=policy, clock=clock,
                             batch_size=batch_size)
        self.interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> PushWorker:
        if not self.running:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="fhir-adapter-push",
                                            daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        """Look at the outbox now (e.g. after an ingest queued new results)."""
        self._wake.set()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Ask the thread to end after its current request, and wait for it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run_once(self) -> DeliveryTally:
        """Deliver every due batch; stop at the first transient failure (the server is away)."""
        self.sender.tally = tally = DeliveryTally()
        while not self._stop.is_set():
            batch = self.sender.claim(due_only=True)
            if batch is None or not self.sender.deliver(batch, wait=False):
                break
        if tally.delivered or tally.failed:
            log.info("pushed to %s: %d delivered, %d failed", self.sender.client.base_url,
                     tally.delivered, tally.failed)
        for message in tally.errors:
            log.warning("push: %s", message)
        return tally

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the worker must outlive a database hiccup; it logs and goes on
                log.exception("outbox delivery round failed")
            self._wake.wait(self.interval)
            self._wake.clear()


def start_push_worker(
    outbox: OutboxRepository,
    build: BundleBuilder,
    settings: Settings,
    *,
    session: requests.Session | None = None,
    policy: RetryPolicy | None = None,
    timeouts: Timeouts | None = None,
    clock: Clock | None = None,
    interval: float = 5.0,
) -> PushWorker | None:
    """The started worker when ``settings.push_url`` is set, else None."""
    if not settings.push_url:
        return None
    clock = clock or (lambda: datetime.now(UTC))
    client = FhirClient(settings.push_url, token=settings.push_token,
                        auth=push_auth(settings, settings.push_url), session=session,
                        timeouts=timeouts, clock=clock)
    policy = policy or RetryPolicy(max_retry_after=settings.push_max_retry_after)
    worker = PushWorker(outbox, build, client, policy=policy, clock=clock, interval=interval)
    return worker.start()
