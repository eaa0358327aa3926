"""Subscriptions held on EHRs: created by ``subscribe``, read by the notification receiver.

The secret a notification must carry is kept only as its SHA-256; ``events_processed`` and
``caught_up_at`` only move forward, so two notifications of one subscription handled at once
never move them back.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, insert, select, update

from fhir_adapter.store.base import UnitBase
from fhir_adapter.store.keys import from_db_time, to_utc
from fhir_adapter.store.schema import ehr_subscription

__all__ = ["EhrSubscription", "SubscriptionRepository", "secret_digest"]


def secret_digest(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class EhrSubscription:
    """One row of ``ehr_subscription``."""

    id: str
    base_url: str
    remote_id: str | None
    kind: str
    criteria: str
    catch_up: str
    content: str
    secret_hash: str
    status: str
    heartbeat_seconds: int | None
    events_processed: int | None
    caught_up_at: str | None
    created_at: datetime
    last_seen_at: datetime | None
    notifications: int
    catch_ups: int
    last_error: str | None

    @property
    def topic_based(self) -> bool:
        return self.kind == "topic"

    def accepts(self, secret: str | None) -> bool:
        """Whether ``secret`` is this subscription's (compared in constant time)."""
        return secret is not None and hmac.compare_digest(secret_digest(secret),
                                                          self.secret_hash)


def _row(r: Any) -> EhrSubscription:
    return EhrSubscription(
        r.id, r.base_url, r.remote_id, r.kind, r.criteria, r.catch_up, r.content,
        r.secret_hash, r.status, r.heartbeat_seconds, r.events_processed, r.caught_up_at,
        from_db_time(r.created_at), from_db_time(r.last_seen_at) if r.last_seen_at else None,
        r.notifications, r.catch_ups, r.last_error)


class SubscriptionRepository(UnitBase):
    """The ``ehr_subscription`` table."""

    def add_subscription(self, *, id: str, base_url: str, kind: str, criteria: str,
                         catch_up: str, content: str, secret: str,
                         heartbeat_seconds: int | None) -> None:
        self.conn.execute(insert(ehr_subscription).values(
            id=id, base_url=base_url, remote_id=None, kind=kind, criteria=criteria,
            catch_up=catch_up, content=content, secret_hash=secret_digest(secret),
            status="requested", heartbeat_seconds=heartbeat_seconds, events_processed=None,
            caught_up_at=None, created_at=to_utc(self.now()), last_seen_at=None,
            notifications=0, catch_ups=0, last_error=None))

    def subscription(self, id: str) -> EhrSubscription | None:
        found = self.conn.execute(
            select(ehr_subscription).where(ehr_subscription.c.id == id)).first()
        return _row(found) if found is not None else None

    def subscriptions(self) -> list[EhrSubscription]:
        rows = self.conn.execute(select(ehr_subscription).order_by(
            ehr_subscription.c.created_at, ehr_subscription.c.id))
        return [_row(r) for r in rows]

    def set_subscription(self, id: str, **values: Any) -> None:
        """Set columns of one subscription (status, remote_id, last_error, ...)."""
        self.conn.execute(update(ehr_subscription).where(ehr_subscription.c.id == id)
                          .values(**values))

    def subscription_seen(self, id: str, *, status: str | None = None,
                          notification: bool = True) -> None:
        """A notification of this subscription arrived, or (``notification`` False) the EHR
        answered a check of it: the last contact is now."""
        values: dict[str, Any] = {"last_seen_at": to_utc(self.now())}
        if notification:
            values["notifications"] = ehr_subscription.c.notifications + 1
        if status is not None:
            values["status"] = status
        self.set_subscription(id, **values)

    def advance_subscription(self, id: str, *, events: int | None = None,
                             caught_up_at: str | None = None, catch_up: bool = False) -> None:
        """Move the event watermark and the catch-up instant forward (never back)."""
        c = ehr_subscription.c
        values: dict[str, Any] = {}
        if events is not None:
            values["events_processed"] = case(
                (c.events_processed.is_(None), events),
                (c.events_processed < events, events), else_=c.events_processed)
        if caught_up_at is not None:
            values["caught_up_at"] = case(
                (c.caught_up_at.is_(None), caught_up_at),
                (c.caught_up_at < caught_up_at, caught_up_at), else_=c.caught_up_at)
        if catch_up:
            values["catch_ups"] = c.catch_ups + 1
        if values:
            self.set_subscription(id, **values)
