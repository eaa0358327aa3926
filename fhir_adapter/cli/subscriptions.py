"""``subscribe`` (a Subscription on the EHR, notifications to ``serve``) and ``subscriptions``
(those held, with their state)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from fhir_adapter.cli.base import app, open_pipeline, out
from fhir_adapter.errors import UnusableInput
from fhir_adapter.fhir.notifications import CONTENTS
from fhir_adapter.pipeline.subscriptions import Subscriptions
from fhir_adapter.settings import Settings
from fhir_adapter.store.subscriptions import EhrSubscription

__all__ = ["subscribe", "subscriptions", "unsubscribe"]


@app.command()
def subscribe(
    to: Annotated[str | None, typer.Option(
        "--to", help="The EHR's FHIR base URL (default FHIR_ADAPTER_EHR_BASE_URL)")] = None,
    topic: Annotated[str | None, typer.Option(
        help="SubscriptionTopic canonical URL (Backport IG); default: a topic of the EHR "
             "on Observation, else a classic Subscription")] = None,
    criteria: Annotated[str | None, typer.Option(
        help="Classic R4 criteria instead of a topic, e.g. Observation?code=2160-0")] = None,
    content: Annotated[str, typer.Option(
        help="Payload: full-resource, id-only or empty")] = "full-resource",
    heartbeat: Annotated[int, typer.Option(
        help="Seconds between heartbeats asked of the EHR (topic-based only)")] = 60,
    endpoint: Annotated[str | None, typer.Option(
        help="The URL at which the EHR reaches serve (default FHIR_ADAPTER_PUBLIC_URL)")] = None,
) -> None:
    """Create a rest-hook Subscription on the EHR whose notifications serve takes at
    /notifications/ID (serve must be running for the EHR's handshake)."""
    settings = Settings()
    base = to or settings.ehr_base_url
    if not base:
        raise UnusableInput("--to BASE (or FHIR_ADAPTER_EHR_BASE_URL) is needed")
    if content not in CONTENTS:
        raise UnusableInput(f"--content {content!r}: one of {', '.join(CONTENTS)}")
    if topic and criteria:
        raise UnusableInput("--topic and --criteria exclude each other")
    if heartbeat < 1:
        raise UnusableInput("--heartbeat: a number of seconds from 1")
    receiver = Subscriptions.from_settings(open_pipeline(settings), settings)
    row, kind = receiver.subscribe(base, endpoint or settings.public_url, topic=topic,
                                   criteria=criteria, content=content, heartbeat=heartbeat)
    what = f"topic {row.criteria}" if kind == "topic" else f"criteria {row.criteria}"
    out.print(f"subscription {row.id} created on {row.base_url} as Subscription/"
              f"{row.remote_id} ({what}, {row.content}); notifications go to "
              f"{(endpoint or settings.public_url).rstrip('/')}/notifications/{row.id} "
              "with the subscription's secret (kept hashed, not shown)", markup=False,
              soft_wrap=True)


@app.command()
def subscriptions(
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """The Subscriptions held on EHRs: state, events processed, last contact, catch-ups."""
    if output not in ("table", "json"):
        raise UnusableInput(f"--format {output!r}: table or json")
    with open_pipeline().store.read() as unit:
        rows = unit.subscriptions()
    if output == "json":
        out.print(json.dumps([_as_json(r) for r in rows], indent=2), markup=False,
                  soft_wrap=True)
        return
    table = [("ID", "EHR", "REMOTE", "KIND", "ON", "PAYLOAD", "STATUS", "EVENTS",
              "LAST CONTACT", "CATCH-UPS", "LAST ERROR")]
    for r in rows:
        table.append((r.id[:12], r.base_url, r.remote_id or "-", r.kind, r.criteria, r.content,
                      r.status, "-" if r.events_processed is None else str(r.events_processed),
                      _when(r.last_seen_at), str(r.catch_ups), r.last_error or ""))
    if len(table) == 1:
        out.print("no subscriptions (fhir-adapter subscribe --to BASE makes one)", markup=False)
        return
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for line in table:
        out.print("  ".join(c.ljust(w) for c, w in zip(line[:-1], widths, strict=True))
                  + "  " + line[-1], markup=False, soft_wrap=True)


@app.command()
def unsubscribe(
    local_id: Annotated[str, typer.Argument(metavar="ID", help="The subscription's id (or its "
                                            "first characters, as subscriptions shows)")],
) -> None:
    """End a subscription: deleted on the EHR, its notifications refused from now on."""
    settings = Settings()
    ended = Subscriptions.from_settings(open_pipeline(settings), settings).end(local_id)
    out.print(f"subscription {ended.id} ended (Subscription/{ended.remote_id} of "
              f"{ended.base_url})", markup=False, soft_wrap=True)


def _as_json(r: EhrSubscription) -> dict[str, object]:
    return {"id": r.id, "ehr": r.base_url, "remote_id": r.remote_id, "kind": r.kind,
            "criteria": r.criteria, "content": r.content, "status": r.status,
            "heartbeat_seconds": r.heartbeat_seconds, "events_processed": r.events_processed,
            "caught_up_at": r.caught_up_at, "created_at": _when(r.created_at),
            "last_contact": _when(r.last_seen_at), "notifications": r.notifications,
            "catch_ups": r.catch_ups, "last_error": r.last_error}


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "-"
