"""Subscription notifications and Subscriptions as FHIR R4 JSON: reading a notification,
writing the Subscription that asks for them.

Two kinds exist on R4 (both read here):

- Topic-based, the Subscriptions R5 Backport IG for R4 (v1.1.0). "Notifications"
  (notifications.html): every notification is a ``history`` Bundle whose first entry is the
  SubscriptionStatus, on R4 a ``Parameters`` resource of the profile
  ``backport-subscription-status-r4`` (``subscription``, ``topic``, ``status``, ``type``,
  ``events-since-subscription-start``, one ``notification-event`` per event with its
  ``event-number``, ``timestamp``, ``focus`` and ``additional-context``); on R4B a
  ``SubscriptionStatus`` resource with the same content in camelCase. The type is one of
  ``handshake``, ``heartbeat``, ``event-notification``, ``query-status``, ``query-event``
  (Backport IG, "Components": SubscriptionStatus.type). "Payloads" (payloads.html): with
  ``empty`` the events carry no focus, with ``id-only`` the focus is a reference and no
  resource is in the Bundle, with ``full-resource`` the resources follow the status entry.
- Classic R4 (R4 subscription.html, 2.46.7.1 "REST Hook"): with no ``channel.payload`` the
  notification is a POST with no body; with a payload the matching resource itself is sent
  (an update, ``PUT [endpoint]/[type]/[id]``, or a POST of it to the endpoint).

Event numbers: ``events-since-subscription-start`` counts every event of the subscription
(Backport IG, "Errors", "Missing Event": a subscriber tracks it per Subscription to see that an
event was missed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BACKPORT_PROFILE",
    "CONTENTS",
    "EXT_CONTENT",
    "EXT_HEARTBEAT",
    "EXT_TIMEOUT",
    "EXT_TOPIC_CANONICAL",
    "Notification",
    "NotificationEvent",
    "backport_subscription",
    "classic_subscription",
    "parse_notification",
    "split_reference",
    "status_of",
    "topic_triggers",
]

_BP = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
#: Backport IG, "Subscriptions" (StructureDefinition-backport-subscription): the profile an R4
#: topic-based Subscription claims; the topic canonical goes in ``Subscription.criteria``.
BACKPORT_PROFILE = f"{_BP}/backport-subscription"
EXT_CONTENT = f"{_BP}/backport-payload-content"
EXT_HEARTBEAT = f"{_BP}/backport-heartbeat-period"
EXT_TIMEOUT = f"{_BP}/backport-timeout"
#: Backport IG, "Capabilities": the topics a server offers, on the CapabilityStatement's
#: ``rest.resource`` of Subscription.
EXT_TOPIC_CANONICAL = f"{_BP}/capabilitystatement-subscriptiontopic-canonical"
#: R5 SubscriptionTopic as an R4 Basic (cross-version extensions; Backport IG, "Topics").
_TOPIC = "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic"
CONTENTS = ("empty", "id-only", "full-resource")
_STATUS_TYPES = ("Parameters", "SubscriptionStatus")


@dataclass(frozen=True, slots=True)
class NotificationEvent:
    """One ``notification-event``: its number, when it happened, the focus it names."""

    number: int
    timestamp: str | None = None
    focus: str | None = None


@dataclass(slots=True)
class Notification:
    """A notification as received: a topic-based one (``kind`` its type) or a classic one
    (``kind`` ``classic``, ``resources`` the resource sent, if any)."""

    kind: str
    subscription: str | None = None
    topic: str | None = None
    status: str | None = None
    events_since_start: int | None = None
    events: list[NotificationEvent] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)
    timestamp: str | None = None

    @property
    def topic_based(self) -> bool:
        return self.kind != "classic"

    def focus_resource(self, reference: str) -> dict[str, Any] | None:
        """The resource of the Bundle that ``reference`` (absolute or ``Type/id``) names."""
        rtype, rid = split_reference(reference)
        return next((r for r in self.resources if r.get("resourceType") == rtype
                     and str(r.get("id")) == rid), None)


def parse_notification(body: Any) -> Notification:
    """The notification in ``body`` (the parsed JSON, or None for an empty POST). A Bundle
    of type ``history`` whose first entry is a SubscriptionStatus is topic-based; any other
    resource is the payload of a classic notification. Raises ValueError for what is neither.
    """
    if body is None:
        return Notification("classic")
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise ValueError("the notification is not a FHIR resource")
    entries = body.get("entry") if body.get("resourceType") == "Bundle" else None
    first = entries[0].get("resource") if isinstance(entries, list) and entries \
        and isinstance(entries[0], dict) else None
    if not (isinstance(first, dict) and first.get("resourceType") in _STATUS_TYPES):
        if body.get("resourceType") == "Bundle" and body.get("type") == "history":
            raise ValueError("a history Bundle whose first entry is not a SubscriptionStatus "
                             "(Parameters): not a Backport notification")
        return Notification("classic", resources=[body])
    if body.get("type") != "history":
        raise ValueError(f"a notification Bundle is of type history, not {body.get('type')!r}")
    note = _from_parameters(first) if first["resourceType"] == "Parameters" \
        else _from_subscription_status(first)
    assert isinstance(entries, list)
    note.resources = [e["resource"] for e in entries[1:]
                      if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    note.timestamp = body.get("timestamp") if isinstance(body.get("timestamp"), str) else None
    if note.kind not in ("handshake", "heartbeat", "event-notification", "query-status",
                         "query-event"):
        raise ValueError(f"SubscriptionStatus type {note.kind!r} is not a notification type")
    return note


def _value(parameter: dict[str, Any]) -> Any:
    return next((v for k, v in parameter.items() if k.startswith("value")), None)


def _reference(value: Any) -> str | None:
    if isinstance(value, dict):
        ref = value.get("reference")
        return ref if isinstance(ref, str) else None
    return value if isinstance(value, str) else None


def _number(value: Any) -> int | None:
    """Event numbers are ``string`` in the R4 profile (int64 in R5), integers in R4B."""
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def _from_parameters(status: dict[str, Any]) -> Notification:
    """Backport IG, StructureDefinition-backport-subscription-status-r4: the parameter names
    are kebab-case; the camelCase of R4B is read too, as some servers send it."""
    note = Notification("")
    for parameter in status.get("parameter") or []:
        if not isinstance(parameter, dict):
            continue
        name = parameter.get("name")
        value = _value(parameter)
        if name == "subscription":
            note.subscription = _reference(value)
        elif name == "topic":
            note.topic = value if isinstance(value, str) else None
        elif name == "status":
            note.status = value if isinstance(value, str) else None
        elif name == "type":
            note.kind = value if isinstance(value, str) else ""
        elif name in ("events-since-subscription-start", "eventsSinceSubscriptionStart"):
            note.events_since_start = _number(value)
        elif name in ("notification-event", "notificationEvent"):
            event = _event({str(p.get("name")): _value(p) for p in parameter.get("part") or []
                            if isinstance(p, dict)})
            if event is not None:
                note.events.append(event)
    return note


def _from_subscription_status(status: dict[str, Any]) -> Notification:
    note = Notification(str(status.get("type") or ""), _reference(status.get("subscription")),
                        status.get("topic"), status.get("status"),
                        _number(status.get("eventsSinceSubscriptionStart")))
    for item in status.get("notificationEvent") or []:
        if isinstance(item, dict):
            event = _event(item)
            if event is not None:
                note.events.append(event)
    return note


def _event(parts: dict[str, Any]) -> NotificationEvent | None:
    number = _number(parts.get("event-number", parts.get("eventNumber")))
    if number is None:
        return None
    timestamp = parts.get("timestamp")
    return NotificationEvent(number, timestamp if isinstance(timestamp, str) else None,
                             _reference(parts.get("focus")))


def split_reference(reference: str) -> tuple[str, str]:
    """``(type, id)`` of an absolute or relative literal reference (a version is dropped)."""
    path = reference.split("/_history/", 1)[0].rstrip("/")
    rtype, _, rid = path.rpartition("/")
    return rtype.rsplit("/", 1)[-1], rid


def status_of(body: Any) -> Notification | None:
    """The SubscriptionStatus in the answer to ``$status`` (a searchset Bundle of them, or one
    Parameters); None when there is none."""
    if not isinstance(body, dict):
        return None
    if body.get("resourceType") == "Parameters":
        return _from_parameters(body)
    if body.get("resourceType") == "SubscriptionStatus":
        return _from_subscription_status(body)
    for entry in body.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") in _STATUS_TYPES:
            return status_of(resource)
    return None


def topic_triggers(basic: dict[str, Any]) -> tuple[str | None, list[str]]:
    """The canonical URL of a topic held as an R4 ``Basic`` and the resource types it
    triggers on (``resourceTrigger.resource``)."""
    url = None
    types = []
    for extension in basic.get("extension") or []:
        if not isinstance(extension, dict):
            continue
        if extension.get("url") == f"{_TOPIC}.url":
            url = _value(extension)
        elif extension.get("url") == f"{_TOPIC}.resourceTrigger":
            for part in extension.get("extension") or []:
                if isinstance(part, dict) and part.get("url") == "resource":
                    types.append(str(_value(part) or "").rsplit("/", 1)[-1])
    return (url if isinstance(url, str) else None), [t for t in types if t]


def backport_subscription(topic: str, endpoint: str, header: str, *, content: str,
                          heartbeat: int | None, reason: str,
                          filters: list[str] | None = None) -> dict[str, Any]:
    """A topic-based Subscription (Backport IG, StructureDefinition-backport-subscription):
    ``criteria`` the topic, filters as ``backport-filter-criteria`` on ``_criteria``, the
    payload content on ``channel._payload``, heartbeat and timeout on ``channel``; status
    ``requested`` (the server makes it ``active`` after the handshake; "Channels", REST-Hook).
    """
    subscription: dict[str, Any] = {
        "resourceType": "Subscription",
        "meta": {"profile": [BACKPORT_PROFILE]},
        "status": "requested",
        "reason": reason,
        "criteria": topic,
        "channel": {"type": "rest-hook", "endpoint": endpoint, "header": [header],
                    "payload": "application/fhir+json",
                    "_payload": {"extension": [{"url": EXT_CONTENT, "valueCode": content}]},
                    "extension": [{"url": EXT_TIMEOUT, "valueUnsignedInt": 30}]},
    }
    if heartbeat:
        subscription["channel"]["extension"].append(
            {"url": EXT_HEARTBEAT, "valueUnsignedInt": heartbeat})
    if filters:
        subscription["_criteria"] = {"extension": [
            {"url": f"{_BP}/backport-filter-criteria", "valueString": f} for f in filters]}
    return subscription


def classic_subscription(criteria: str, endpoint: str, header: str, *, payload: bool,
                         reason: str) -> dict[str, Any]:
    """A classic R4 Subscription on ``criteria`` (R4 subscription.html): with ``payload`` the
    resource is sent, without it an empty POST says only that something matched."""
    channel: dict[str, Any] = {"type": "rest-hook", "endpoint": endpoint, "header": [header]}
    if payload:
        channel["payload"] = "application/fhir+json"
    return {"resourceType": "Subscription", "status": "requested", "reason": reason,
            "criteria": criteria, "channel": channel}
