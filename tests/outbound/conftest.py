"""Fixtures of the push tests: a research FHIR server on loopback and a stand-in store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fhir_adapter.outbound import RetryPolicy

from .fhir_server import FhirTestServer
from .standin import StandinStore

TOKEN = "research-token"


@pytest.fixture
def server() -> Iterator[FhirTestServer]:
    running = FhirTestServer(token=TOKEN).start()
    yield running
    running.stop()


@pytest.fixture
def store(tmp_path: Path) -> StandinStore:
    return StandinStore(str(tmp_path / "outbox.db"))


class Sleeps(list[float]):
    """An injected sleep: records what the sender asked to wait, waits nothing."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def policy() -> RetryPolicy:
    """No jitter (random always 0), so the waits are the plain exponential series 1, 2, 4 ..."""
    return RetryPolicy(base=1.0, factor=2.0, jitter=0.5, max_attempts=4, rng=lambda: 0.0)
