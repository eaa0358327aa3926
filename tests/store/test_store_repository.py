"""The store on SQLite and PostgreSQL: migrations, identity keys, versions, the trial model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fhir_adapter.store import Store, content_hash, identity_keys
from fhir_adapter.store.outbox import OutboxStore
from fhir_adapter.store.schema import metadata
from fhir_adapter.trial.model import Measurement

TEHRAN = timezone(timedelta(hours=3, minutes=30))


def _observation(value: float, status: str = "final") -> dict:
    return {"resourceType": "Observation", "id": "o1", "status": status,
            "identifier": [{"system": "urn:lab", "value": "A1"}], "valueQuantity": {"value": value}}


def test_migrations_create_exactly_the_schema(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
        assert set(store.row_counts()) == {
            "resource", "resource_key", "resource_version", "participant", "enrollment",
            "measurement", "infusion", "endpoint_result", "outbox", "audit", "adapter_secret",
            "recompute_pending", "smart_client", "smart_assertion", "smart_access_token",
            "pull_job", "pull_watermark", "bulk_export", "ehr_subscription"}
    finally:
        store.close()


def test_identity_keys_strongest_first() -> None:
    keys = identity_keys(_observation(1), sender="h1", full_url="urn:uuid:ABC")
    assert keys == ["ident|Observation|urn:lab|A1", "id|Observation|h1|o1", "uuid|Observation|abc"]


def test_save_creates_versions_and_ignores_same_content(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        first, second = _observation(1), _observation(2, "amended")
        keys = identity_keys(first, sender="h1")
        with store.transaction() as unit:
            a = unit.save("Observation", keys, first, sender="h1",
                          content_hash=content_hash(first), new_id="a" * 32)
        with store.transaction() as unit:
            same = unit.save("Observation", keys, first, sender="h1",
                             content_hash=content_hash(first), new_id="b" * 32)
        with store.transaction() as unit:  # found by the id key alone: still the same resource
            b = unit.save("Observation", ["id|Observation|h1|o1"], second, sender="h1",
                          content_hash=content_hash(second), new_id="c" * 32)
            history = unit.history(a.id)
        assert (a.created, a.version) == (True, 1)
        assert (same.created, same.changed, same.id, same.version) == (False, False, a.id, 1)
        assert (b.created, b.changed, b.id, b.version) == (False, True, a.id, 2)
        assert [v for v, *_ in history] == [1, 2]
        assert history[1][3]["status"] == "amended"
        counts = store.row_counts()
        assert (counts["resource"], counts["resource_version"], counts["resource_key"]) == (1, 2, 2)
    finally:
        store.close()


def test_a_create_that_loses_the_race_becomes_an_update(store_url: str) -> None:
    """The UNIQUE key, not a prior lookup, settles two creates of the same resource."""
    store = Store.open(store_url)
    try:
        doc = _observation(1)
        keys = identity_keys(doc, sender="h1")
        with store.transaction() as unit:
            winner = unit.save("Observation", keys, doc, sender="h1",
                               content_hash=content_hash(doc), new_id="a" * 32)
        later = _observation(3)
        with store.transaction() as unit:
            real_find = unit.find
            calls = []

            def blind_first(k):  # the lookup ran before the other writer committed
                calls.append(k)
                return None if len(calls) == 1 else real_find(k)

            unit.find = blind_first  # type: ignore[method-assign]
            loser = unit.save("Observation", keys, later, sender="h1",
                              content_hash=content_hash(later), new_id="b" * 32)
        assert (loser.id, loser.created, loser.version) == (winner.id, False, 2)
        assert store.row_counts()["resource"] == 1
    finally:
        store.close()


def test_measurements_round_trip_exact_and_in_utc(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        doc = _observation(1)
        at = datetime(2024, 3, 24, 8, 15, tzinfo=TEHRAN)
        with store.transaction() as unit:
            unit.upsert_participant("S-1", status="on-study")
            saved = unit.save("Observation", identity_keys(doc, sender="h"), doc, sender="h",
                              content_hash=content_hash(doc), new_id="d" * 32)
            unit.put_measurement(saved.id, "S-1", Measurement(
                source=saved.key, analyte="creatinine", value=Decimal("0.10"), unit="mg/dL",
                at=at, uln=Decimal("1.20"), code="2160-0"))
        with store.read() as unit:
            [record] = unit.records()
        [m] = record.measurements
        assert m.value == Decimal("0.10") and str(m.value) == "0.10"
        assert m.at == at and m.at.tzinfo == UTC
        assert m.source == f"Observation/{'d' * 32}" and m.uln == Decimal("1.20")
    finally:
        store.close()


def test_results_outbox_and_audit(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        with store.transaction() as unit:
            first = unit.put_result("S-1.serum-creatinine.creatinine.W2", kind="visit",
                                    subject="S-1", status="final", resource={"v": 1},
                                    content_hash="h1", enqueue=True)
            same = unit.put_result("S-1.serum-creatinine.creatinine.W2", kind="visit",
                                   subject="S-1", status="final", resource={"v": 1},
                                   content_hash="h1", enqueue=True)
            second = unit.put_result("S-1.serum-creatinine.creatinine.W2", kind="visit",
                                     subject="S-1", status="entered-in-error",
                                     resource={"v": 1}, content_hash="h1", enqueue=True)
            unit.record_audit("ehr-1", "transaction", ["Observation/x"], "200 OK")
        assert first is not None and first.version == 1
        assert same is None
        assert second is not None and second.version == 2
        box = OutboxStore(store)
        now = store.clock()
        due = box.claim_outbox(now=now, lease_until=now + timedelta(minutes=5), limit=500)
        assert [(r.version, r.state) for r in due] == [(1, "pending"), (2, "pending")]
        box.outbox_delivered([due[0].id], at=now)
        box.outbox_failed([due[1].id], error="422")
        states = [(r.state, r.attempts) for r in box.outbox_rows(states=("delivered", "failed"))]
        with store.read() as unit:
            audit = unit.audit_rows()
        assert states == [("delivered", 1), ("failed", 1)]
        assert [(a.who, a.resources, a.outcome) for a in audit] == [
            ("ehr-1", ["Observation/x"], "200 OK")]
    finally:
        store.close()
