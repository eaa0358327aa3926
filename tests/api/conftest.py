"""Fixtures of the REST tests: a live server over a fresh database, with one token per role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.api_harness import Live, make_settings, make_tokens, start


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """The adapter on a fresh SQLite database, served by uvicorn on a free loopback port."""
    settings = make_settings(tmp_path)
    yield from start(settings, make_tokens(settings.tokens_file))
