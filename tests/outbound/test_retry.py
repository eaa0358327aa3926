"""The retry policy: which answers are transient, how long to wait, Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from fhir_adapter.outbound import RetryPolicy, is_retryable_status, parse_retry_after

NOW = datetime(2024, 3, 5, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_transient_statuses(status: int) -> None:
    assert is_retryable_status(status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 412, 413, 415, 422, 200, 301])
def test_final_statuses(status: int) -> None:
    assert not is_retryable_status(status)


def test_retry_after_in_seconds() -> None:
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after(" 0 ", NOW) == 0.0


def test_retry_after_as_http_date() -> None:
    # RFC 9110 IMF-fixdate, 90 seconds after NOW
    assert parse_retry_after("Tue, 05 Mar 2024 10:01:30 GMT", NOW) == 90.0


def test_retry_after_date_read_in_another_zone() -> None:
    # the same instant seen from UTC+01:00: the wait does not depend on the local zone
    now_cet = NOW.astimezone(timezone(timedelta(hours=1)))
    assert parse_retry_after("Tue, 05 Mar 2024 10:01:30 GMT", now_cet) == 90.0


def test_retry_after_in_the_past_means_now() -> None:
    assert parse_retry_after("Tue, 05 Mar 2024 09:00:00 GMT", NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5"])
def test_unreadable_retry_after_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(base=1.0, factor=2.0, max_delay=10.0, jitter=0.5, rng=lambda: 0.0)
    assert [policy.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_jitter_takes_off_up_to_its_share() -> None:
    # rng 1.0 -> the delay times (1 - 0.5); rng 0.5 -> times 0.75
    assert RetryPolicy(base=4.0, jitter=0.5, rng=lambda: 1.0).delay(1) == 2.0
    assert RetryPolicy(base=4.0, jitter=0.5, rng=lambda: 0.5).delay(2) == 6.0


def test_jittered_delays_stay_within_bounds() -> None:
    import random

    generator = random.Random(7)
    policy = RetryPolicy(base=2.0, max_delay=60.0, jitter=0.5, rng=generator.random)
    for attempt in range(1, 12):
        plain = min(60.0, 2.0 * 2 ** (attempt - 1))
        assert plain / 2 <= policy.delay(attempt) <= plain


def test_retry_after_wins_and_is_capped() -> None:
    policy = RetryPolicy(base=1.0, max_retry_after=600.0, rng=lambda: 0.0)
    assert policy.delay(5, retry_after=30.0) == 30.0
    assert policy.delay(1, retry_after=86400.0) == 600.0


def test_many_attempts_do_not_overflow() -> None:
    assert RetryPolicy(max_delay=300.0, rng=lambda: 0.0).delay(5000) == 300.0
