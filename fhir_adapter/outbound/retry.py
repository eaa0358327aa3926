"""When to try a delivery again: exponential backoff with jitter, and the server's Retry-After."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["RETRYABLE_STATUSES", "RetryPolicy", "is_retryable_status", "parse_retry_after"]

#: HTTP statuses worth another try: timeout, too many requests, and every server error.
RETRYABLE_STATUSES = frozenset({408, 429})


def is_retryable_status(status: int) -> bool:
    """408, 429 and 5xx are transient; any other status is the server's final word."""
    return status in RETRYABLE_STATUSES or 500 <= status <= 599


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent
    or unreadable. A date in the past means "now" (0)."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter.

    Try ``n`` (1-based) that failed waits ``base * factor**(n-1)`` seconds, capped at ``max_delay``,
    scaled by a random factor in ``[1 - jitter, 1]`` so that many senders do not retry in step.
    A ``Retry-After`` from the server wins, cut to ``max_retry_after`` (the setting
    ``push_max_retry_after``, FHIR_ADAPTER_PUSH_MAX_RETRY_AFTER). ``max_attempts`` is how
    many tries one ``push`` makes before it leaves the rest pending for later.
    """

    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.5
    max_attempts: int = 6
    max_retry_after: float = 120.0
    rng: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        exponent = min(max(attempt, 1) - 1, 64)  # no float overflow after many tries
        raw = min(self.max_delay, self.base * self.factor**exponent)
        return raw * (1.0 - self.jitter * self.rng())
