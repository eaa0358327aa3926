"""Fixtures of the REST tests: a tokens file, settings on a fresh database, a live server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_adapter.api import create_app
from fhir_adapter.settings import Settings
from fhir_adapter.store.tokens import TokenFile
from tests.api.harness import serve_in_thread

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SYNTHEA = DATA / "synthea"
FHIR_JSON = "application/fhir+json"


@dataclass
class Live:
    """A running server: its base URL, its pipeline, and one token per role."""

    base: str
    pipeline: Any
    settings: Settings
    ehr: str
    research: str
    other_ehr: str

    def client(self, token: str | None, **kwargs: Any) -> httpx.Client:
        headers = {"Accept": FHIR_JSON}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.base, headers=headers, timeout=120, **kwargs)


def make_tokens(path: Path) -> dict[str, str]:
    tokens = TokenFile(path)
    return {
        "ehr": tokens.create("hospital-a", ["system/*.cu"]),
        "other_ehr": tokens.create("hospital-b", ["system/*.cu"]),
        "research": tokens.create("research-server", ["system/*.rs"]),
    }


def make_settings(tmp_path: Path, database_url: str | None = None) -> Settings:
    return Settings(
        database_url=database_url or f"sqlite:///{tmp_path / 'adapter.db'}",
        tokens_file=tmp_path / "tokens.json",
    )


def start(settings: Settings, tokens: dict[str, str]) -> Iterator[Live]:
    from fhir_adapter.pipeline import Pipeline

    pipeline = Pipeline.from_settings(settings)
    with serve_in_thread(create_app(settings, pipeline)) as base:
        yield Live(base, pipeline, settings, tokens["ehr"], tokens["research"], tokens["other_ehr"])


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """The adapter on a fresh SQLite database, served by uvicorn on a free loopback port."""
    settings = make_settings(tmp_path)
    yield from start(settings, make_tokens(settings.tokens_file))


def synthea_files() -> list[Path]:
    if not SYNTHEA.is_dir():
        pytest.skip(f"real Synthea data not found at {SYNTHEA}")
    return sorted(SYNTHEA.glob("*.json"))
