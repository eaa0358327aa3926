"""The server's watch over its EHR subscriptions: a check of each when the server starts
(notifications sent while it was down were refused, so they are caught up), then a check of
each topic-based one whose heartbeat is late (Subscriptions R5 Backport IG v1.1.0, "Errors",
"Broken Communication": the ``heartbeatPeriod`` elapsed without a notification, so the
subscriber asks ``$status`` and recovers)."""

from __future__ import annotations

import logging
import threading

from fhir_adapter.errors import AdapterError
from fhir_adapter.pipeline.subscriptions import Subscriptions

__all__ = ["SubscriptionWatch"]

log = logging.getLogger("fhir_adapter.subscriptions")
#: Missed heartbeats before a check: one late heartbeat is not yet a broken channel.
GRACE = 2.0


class SubscriptionWatch:
    """A daemon thread; ``stop()`` ends it."""

    def __init__(self, subscriptions: Subscriptions, *, interval: float = 5.0) -> None:
        self.subscriptions = subscriptions
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="subscription-watch",
                                        daemon=True)

    def start(self) -> SubscriptionWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        for row in self.subscriptions.held():
            if self._stop.is_set():
                return
            if row.status != "off" and row.remote_id:
                self._check(row.id, always_catch_up=True)
        while not self._stop.wait(self._period()):
            for row in self.subscriptions.overdue(GRACE):
                if self._stop.is_set():
                    return
                self._check(row.id)

    def _period(self) -> float:
        beats = [r.heartbeat_seconds for r in self.subscriptions.held()
                 if r.heartbeat_seconds and r.status != "off"]
        return max(0.5, min([self.interval, *(b / 2 for b in beats)]))

    def _check(self, local_id: str, *, always_catch_up: bool = False) -> None:
        try:
            done = self.subscriptions.check(local_id, always_catch_up=always_catch_up)
        except AdapterError as exc:
            log.warning("subscription %s: check failed: %s", local_id, exc.message)
            self.subscriptions.note_error(local_id, exc.message)
            return
        except Exception:  # the watch must outlive one bad round
            log.exception("subscription %s: check failed", local_id)
            return
        if done.caught_up is not None or done.reactivated:
            log.info("subscription %s: %s", local_id, done.text())
