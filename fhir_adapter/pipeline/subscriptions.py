"""Subscriptions on the EHR: ``subscribe`` creates one, the receiver takes its notifications.

Every resource a notification brings (in the Bundle, fetched by its id, or found by a
catch-up search) goes through ``Pipeline.process_resource`` under the EHR's sender, as a line
of ``pull`` does: one validation, one identity, so a notification sent again, or data caught
up that a notification had brought, stores nothing twice.

Event numbers (Subscriptions R5 Backport IG v1.1.0, "Errors", "Missing Event" and "Broken
Communication"): the subscription keeps the number of the last event whose data is committed
together with every event before it. A notification whose first new event is beyond the next
number, a heartbeat or handshake counting more events than that, or the EHR's ``$status``
saying so, is a gap: the resources of the subscription's type changed on the EHR since the
last instant caught up are searched (``_lastUpdated=ge``) and taken. "Recovering from
Errors": a subscription the EHR put in ``error`` (or ``off``) is asked back by an update of its
status to ``requested`` after the catch-up; the EHR then sends a new handshake.

A notification is answered only after its data is committed; when the EHR cannot be read (an
``id-only`` focus, a catch-up), it is answered 503 and nothing moves, so it is sent again or
caught up later.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fhir_adapter.errors import AdapterError, AuthError, DeliveryError, NotFound, UnusableInput
from fhir_adapter.fhir.notifications import (
    EXT_TOPIC_CANONICAL,
    Notification,
    backport_subscription,
    classic_subscription,
    parse_notification,
    split_reference,
    status_of,
    topic_triggers,
)
from fhir_adapter.outbound.ehr_rest import EhrFailed, EhrRest
from fhir_adapter.outbound.smart import smart_auth
from fhir_adapter.pipeline.pull import ehr_sender
from fhir_adapter.settings import Settings
from fhir_adapter.store.keys import sender_id_key
from fhir_adapter.store.subscriptions import EhrSubscription

if TYPE_CHECKING:
    from fhir_adapter.pipeline.orchestrator import Pipeline

__all__ = ["CATCH_UP_MARGIN", "Received", "Subscriptions", "normal_instant"]

#: A catch-up searches from this long before the last instant caught up (instants of the EHR's
#: own clock): writes of the EHR that commit in another order than their ``meta.lastUpdated``
#: are still found. What is found twice is unchanged and stores nothing.
CATCH_UP_MARGIN = timedelta(seconds=10)
#: Resource types whose ``subject`` (or ``patient``) is fetched first when the adapter does not
#: hold it: a participant enrolled by the roster has no Patient here until one arrives.
_SUBJECT_TYPES = ("Observation", "MedicationAdministration", "Specimen")
_INACTIVE = ("error", "off", "entered-in-error")

RestFor = Callable[[str], EhrRest]


def normal_instant(value: str | datetime | None) -> str | None:
    """An instant as UTC ISO text with microseconds, so that texts compare as times."""
    if value is None:
        return None
    try:
        moment = value if isinstance(value, datetime) else \
            datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Received:
    """What one notification (or check) did."""

    kind: str
    states: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    caught_up: int | None = None  # resources the catch-up search found (None: no catch-up)
    duplicate: bool = False
    reactivated: bool = False

    def text(self) -> str:
        parts = [f"{self.kind}:"]
        if self.duplicate:
            parts.append("already processed, nothing stored")
        parts += [f"{state} {n}" for state, n in sorted(self.states.items())]
        if self.caught_up is not None:
            parts.append(f"gap caught up ({self.caught_up} resource(s) searched)")
        if self.reactivated:
            parts.append("the subscription was asked back to active")
        return " ".join(parts) if len(parts) > 1 else f"{self.kind}: accepted"


class Subscriptions:
    """The EHR subscriptions of one pipeline: create, receive, check."""

    def __init__(self, pipeline: Pipeline, rest_for: RestFor) -> None:
        self.pipeline = pipeline
        self.rest_for = rest_for
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @classmethod
    def from_settings(cls, pipeline: Pipeline, settings: Settings) -> Subscriptions:
        """With the EHR's SMART Backend Services client of the settings (one per base URL,
        so its access token is reused)."""
        clients: dict[str, EhrRest] = {}
        guard = threading.Lock()

        def rest_for(base_url: str) -> EhrRest:
            with guard:
                base = base_url.rstrip("/")
                if base not in clients:
                    clients[base] = EhrRest(base, smart_auth(settings, base))
                return clients[base]

        return cls(pipeline, rest_for)

    # -- subscribe -----------------------------------------------------------------------

    def subscribe(self, base_url: str, public_url: str, *, topic: str | None = None,
                  criteria: str | None = None, content: str = "full-resource",
                  heartbeat: int | None = 60) -> tuple[EhrSubscription, str]:
        """Create the Subscription on the EHR: on ``topic``, else on a topic of the EHR that
        triggers on Observation, else (or with ``criteria``) a classic one. The row is kept
        before the EHR is asked, so that its handshake finds it. (the row, the kind chosen)"""
        rest = self.rest_for(base_url)
        base = rest.base_url
        if topic is None and criteria is None:
            topic = self._observation_topic(rest)
        kind = "topic" if topic else "classic"
        what = topic or criteria or "Observation?"
        local_id = uuid.uuid4().hex
        secret = secrets.token_urlsafe(32)
        endpoint = f"{public_url.rstrip('/')}/notifications/{local_id}"
        header = f"Authorization: Bearer {secret}"
        reason = "fhir-adapter: results of the trial's participants"
        if kind == "topic":
            body = backport_subscription(what, endpoint, header, content=content,
                                         heartbeat=heartbeat, reason=reason)
            catch_up = self._topic_types(rest, what)
        else:
            body = classic_subscription(what, endpoint, header,
                                        payload=content != "empty", reason=reason)
            catch_up = what
        with self.pipeline.store.transaction() as unit:
            unit.add_subscription(
                id=local_id, base_url=base, kind=kind, criteria=what, catch_up=catch_up,
                content=content if kind == "topic" else
                ("full-resource" if content != "empty" else "empty"),
                secret=secret, heartbeat_seconds=heartbeat if kind == "topic" else None)
        try:
            created = rest.create(body)
        except DeliveryError as exc:
            with self.pipeline.store.transaction() as unit:
                unit.set_subscription(local_id, status="off", last_error=exc.message[:500])
            raise
        since = normal_instant((created.get("meta") or {}).get("lastUpdated")) \
            or normal_instant(datetime.now(UTC))
        with self.pipeline.store.transaction() as unit:
            unit.set_subscription(local_id, remote_id=str(created.get("id") or ""))
            unit.advance_subscription(local_id, caught_up_at=since)
            if kind == "classic" and created.get("status") == "active":
                unit.set_subscription(local_id, status="active")
            row = unit.subscription(local_id)
        assert row is not None
        return row, kind

    @staticmethod
    def _observation_topic(rest: EhrRest) -> str | None:
        """A topic the EHR lists (Backport IG, "Capabilities") that triggers on Observation."""
        statement = rest.capability()
        listed = [str(e.get("valueCanonical") or e.get("valueUri"))
                  for r in (statement.get("rest") or [{}])[0].get("resource") or []
                  if r.get("type") == "Subscription"
                  for e in r.get("extension") or [] if e.get("url") == EXT_TOPIC_CANONICAL]
        if not listed:
            return None
        for basic in rest.search("Basic?code=SubscriptionTopic"):
            url, types = topic_triggers(basic)
            if url in listed and "Observation" in types:
                return url
        return None

    @staticmethod
    def _topic_types(rest: EhrRest, topic: str) -> str:
        """What a catch-up of this topic searches: its trigger resource (Observation when the
        topic cannot be read)."""
        try:
            for basic in rest.search("Basic?code=SubscriptionTopic"):
                url, types = topic_triggers(basic)
                if url == topic and types:
                    return f"{types[0]}?"
        except DeliveryError:
            pass
        return "Observation?"

    # -- receive -------------------------------------------------------------------------

    def _lock(self, local_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(local_id, threading.Lock())

    def find(self, local_id: str, secret: str | None) -> EhrSubscription:
        """The subscription a notification is for; 404 unknown or ended, 401 wrong secret."""
        with self.pipeline.store.read() as unit:
            row = unit.subscription(local_id)
        if row is None:
            raise NotFound(f"no subscription {local_id} is held here")
        if not row.accepts(secret):
            raise AuthError("this notification does not carry the subscription's secret "
                            "(Authorization: Bearer, as its channel.header says)")
        if row.status == "off":
            raise NotFound(f"subscription {local_id} has ended")
        return row

    def receive(self, local_id: str, secret: str | None, body: Any,
                resource_path: str | None = None) -> Received:
        """Take one notification (``body`` the parsed JSON, None when empty)."""
        row = self.find(local_id, secret)
        try:
            note = parse_notification(body)
        except ValueError as exc:
            raise UnusableInput(f"not a subscription notification: {exc}") from None
        if note.topic_based != row.topic_based:
            raise UnusableInput(f"a {'topic-based' if note.topic_based else 'classic'} "
                                f"notification for a {row.kind} subscription")
        with self._lock(local_id):
            row = self.find(local_id, secret)
            if note.topic_based:
                self._same_subscription(row, note)
                return self._topic(row, note)
            return self._classic(row, note)

    def _same_subscription(self, row: EhrSubscription, note: Notification) -> None:
        if not note.subscription:
            return
        named = split_reference(note.subscription)[1]
        if row.remote_id and named != row.remote_id:
            raise NotFound(f"the notification names Subscription/{named}; this endpoint is "
                           f"Subscription/{row.remote_id} of {row.base_url}")
        if not row.remote_id:  # the handshake came before the EHR's answer to the create
            with self.pipeline.store.transaction() as unit:
                unit.set_subscription(row.id, remote_id=named)

    def _topic(self, row: EhrSubscription, note: Notification) -> Received:
        done = Received(note.kind)
        processed = row.events_processed
        rest = self.rest_for(row.base_url)
        status = "active" if note.kind in ("handshake", "heartbeat") or \
            note.status in (None, "active") else None
        if note.kind == "event-notification":
            new = [e for e in note.events if processed is None or e.number > processed]
            if note.events and not new:
                done.duplicate = True
            else:
                for resource in self._payload(row, note, new, rest):
                    self._take(row, resource, rest, done)
                first = min((e.number for e in new), default=None)
                expected = (processed or 0) + 1
                if row.content == "empty" or (first is not None and first > expected):
                    done.caught_up = self._catch_up(row, rest, done)
                numbers = [e.number for e in new] + (
                    [note.events_since_start] if note.events_since_start is not None
                    and not note.events else [])
                last = max(numbers, default=None)
                stamps = [normal_instant(e.timestamp) for e in new]
                with self.pipeline.store.transaction() as unit:
                    unit.advance_subscription(row.id, events=last, caught_up_at=max(
                        (s for s in stamps if s), default=None))
        elif note.kind in ("handshake", "heartbeat"):
            count = note.events_since_start
            if count is not None and processed is not None and count > processed:
                done.caught_up = self._catch_up(row, rest, done)
            with self.pipeline.store.transaction() as unit:
                unit.advance_subscription(row.id, events=count if count is not None else 0)
        with self.pipeline.store.transaction() as unit:
            unit.subscription_seen(row.id, status=status)
        return done

    def _payload(self, row: EhrSubscription, note: Notification, new: Iterable[Any],
                 rest: EhrRest) -> list[dict[str, Any]]:
        """The resources of the new events: in the Bundle (full-resource, and any additional
        resources sent with them), else read from the EHR by their focus (id-only)."""
        if note.resources:
            return list(note.resources)
        found = []
        for event in new:
            if event.focus:
                # read at the subscription's own EHR, whatever host the reference names: the
                # access token goes to no other server
                rtype, rid = split_reference(event.focus)
                resource = rest.read(f"{rtype}/{rid}")
                if resource is not None:
                    found.append(resource)
        return found

    def _classic(self, row: EhrSubscription, note: Notification) -> Received:
        """R4 rest-hook: the resource itself, or (an empty POST) a search of the criteria."""
        done = Received("classic notification")
        rest = self.rest_for(row.base_url)
        if note.resources:
            for resource in note.resources:
                self._take(row, resource, rest, done)
            stamps = [normal_instant((r.get("meta") or {}).get("lastUpdated"))
                      for r in note.resources]
            latest = max((s for s in stamps if s), default=None)
        else:
            done.caught_up = self._catch_up(row, rest, done)
            latest = None
        with self.pipeline.store.transaction() as unit:
            if latest is not None:
                unit.advance_subscription(row.id, caught_up_at=latest)
            unit.subscription_seen(row.id, status="active")
        return done

    # -- take, catch up ------------------------------------------------------------------

    def _take(self, row: EhrSubscription, resource: dict[str, Any], rest: EhrRest,
              done: Received) -> None:
        """One resource through the pipeline under the EHR's sender; its Patient first when
        the adapter does not hold it."""
        sender = ehr_sender(row.base_url)
        if resource.get("resourceType") in _SUBJECT_TYPES:
            self._subject_first(resource, sender, rest, done)
        where = f"{resource.get('resourceType')}/{resource.get('id')}"
        try:
            entry = self.pipeline.process_resource(resource, sender=sender, prefer="minimal")
        except DeliveryError:
            raise
        except AdapterError as exc:
            done.states["refused"] += 1
            done.errors.append(f"{where}: {exc.message}")
            return
        done.states[entry.state] += 1
        if entry.reason:
            done.errors.append(f"{where}: not kept: {entry.reason}")

    def _subject_first(self, resource: dict[str, Any], sender: str, rest: EhrRest,
                       done: Received) -> None:
        subject = resource.get("subject") or resource.get("patient")
        reference = subject.get("reference") if isinstance(subject, dict) else None
        if not isinstance(reference, str) or "?" in reference or \
                not reference.startswith("Patient/"):
            return
        rid = split_reference(reference)[1]
        with self.pipeline.store.read() as unit:
            held = unit.find([sender_id_key("Patient", sender, rid)])
        if held is not None:
            return
        patient = rest.read(reference)
        if patient is not None:
            try:
                entry = self.pipeline.process_resource(patient, sender=sender,
                                                       prefer="minimal")
                done.states[f"Patient {entry.state}"] += 1
            except AdapterError as exc:
                if isinstance(exc, DeliveryError):
                    raise
                done.errors.append(f"{reference}: {exc.message}")

    def _catch_up(self, row: EhrSubscription, rest: EhrRest, done: Received) -> int:
        """Search what changed on the EHR since the last instant caught up, take it all."""
        with self.pipeline.store.read() as unit:
            current = unit.subscription(row.id)
        since = current.caught_up_at if current is not None else row.caught_up_at
        query = row.catch_up if "?" in row.catch_up else f"{row.catch_up}?"
        if since:
            start = datetime.fromisoformat(since.replace("Z", "+00:00")) - CATCH_UP_MARGIN
            query += ("" if query.endswith("?") else "&") + \
                f"_lastUpdated=ge{start.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        found = 0
        latest = since
        for resource in rest.search(query):
            found += 1
            self._take(row, resource, rest, done)
            stamp = normal_instant((resource.get("meta") or {}).get("lastUpdated"))
            if stamp and (latest is None or stamp > latest):
                latest = stamp
        with self.pipeline.store.transaction() as unit:
            unit.advance_subscription(row.id, caught_up_at=latest, catch_up=True)
        return found

    # -- check ---------------------------------------------------------------------------

    def check(self, local_id: str, *, always_catch_up: bool = False) -> Received:
        """Ask the EHR how the subscription stands (``$status``, else a read of it); catch up
        when it counts more events than were processed, when it is not active, or when
        ``always_catch_up`` (notifications may have been missed while the adapter was down);
        ask an EHR-side ``error``/``off`` back to ``requested``."""
        done = Received("check")
        with self._lock(local_id):
            with self.pipeline.store.read() as unit:
                row = unit.subscription(local_id)
            if row is None or row.status == "off" or not row.remote_id:
                return done
            rest = self.rest_for(row.base_url)
            status, count = self._remote_status(row, rest)
            behind = count is not None and (row.events_processed or 0) < count
            if always_catch_up or behind or status in _INACTIVE:
                done.caught_up = self._catch_up(row, rest, done)
            with self.pipeline.store.transaction() as unit:
                if count is not None:
                    unit.advance_subscription(local_id, events=count)
                unit.subscription_seen(local_id, notification=False)
                unit.set_subscription(local_id, last_error=(
                    f"the EHR had it {status}" if status in _INACTIVE else None))
            if status in _INACTIVE:
                self._reactivate(row, rest)
                done.reactivated = True
        return done

    @staticmethod
    def _remote_status(row: EhrSubscription, rest: EhrRest) -> tuple[str | None, int | None]:
        if row.topic_based:
            try:
                note = status_of(rest.status(str(row.remote_id)))
                if note is not None:
                    return note.status, note.events_since_start
            except EhrFailed:
                pass  # no $status: the Subscription's own status
        found = rest.read(f"Subscription/{row.remote_id}")
        return (str(found.get("status")) if found else "off"), None

    def _reactivate(self, row: EhrSubscription, rest: EhrRest) -> None:
        """Backport IG, "Errors", "Recovering from Errors": the client asks the subscription
        back by updating its status to ``requested``."""
        found = rest.read(f"Subscription/{row.remote_id}")
        if found is None:
            with self.pipeline.store.transaction() as unit:
                unit.set_subscription(row.id, status="off",
                                      last_error="the EHR no longer has the Subscription")
            return
        found = {k: v for k, v in found.items() if k != "error"}
        found["status"] = "requested"
        rest.update(found)
        with self.pipeline.store.transaction() as unit:
            unit.set_subscription(row.id, status="requested")

    def overdue(self, grace: float = 2.0) -> list[EhrSubscription]:
        """Topic-based subscriptions whose heartbeat is late (``grace`` periods without a
        notification or a check)."""
        now = datetime.now(UTC)
        with self.pipeline.store.read() as unit:
            rows = unit.subscriptions()
        late = []
        for row in rows:
            if row.status == "off" or not row.heartbeat_seconds or not row.remote_id:
                continue
            last = row.last_seen_at or row.created_at
            if now - last > timedelta(seconds=grace * row.heartbeat_seconds):
                late.append(row)
        return late

    def end(self, local_id: str) -> EhrSubscription:
        """End a subscription: deleted on the EHR (else its status set to ``off`` there),
        ``off`` here; its notifications are refused from now on (404)."""
        with self.pipeline.store.read() as unit:
            matches = [r for r in unit.subscriptions() if r.id.startswith(local_id)]
        if len(matches) != 1:
            raise NotFound(f"no subscription {local_id!r} is held here" if not matches else
                           f"{local_id!r} names {len(matches)} subscriptions: give more of it")
        row = matches[0]
        with self.pipeline.store.transaction() as unit:
            unit.set_subscription(row.id, status="off")
        if row.remote_id:
            rest = self.rest_for(row.base_url)
            if rest.delete(f"Subscription/{row.remote_id}") >= 400:
                found = rest.read(f"Subscription/{row.remote_id}")
                if found is not None:
                    rest.update({**found, "status": "off"})
        with self.pipeline.store.read() as unit:
            ended = unit.subscription(row.id)
        assert ended is not None
        return ended

    def note_error(self, local_id: str, text: str) -> None:
        with self.pipeline.store.transaction() as unit:
            unit.set_subscription(local_id, last_error=text[:500])

    def held(self) -> list[EhrSubscription]:
        with self.pipeline.store.read() as unit:
            return unit.subscriptions()
