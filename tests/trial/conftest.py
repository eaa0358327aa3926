"""Fixtures of the trial tests: the project's own definition files, a clock frozen off UTC."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from fhir_adapter.paths import mappings_dir
from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition


@pytest.fixture(autouse=True)
def chatham_clock() -> Iterator[None]:
    """Freeze the clock in Pacific/Chatham (+12:45/+13:45): any use of local time shows."""
    when = datetime(2031, 7, 4, 3, 33, tzinfo=ZoneInfo("Pacific/Chatham"))
    with time_machine.travel(when, tick=False):
        assert time.strftime("%z") in ("+1245", "+1345")
        yield


@pytest.fixture(scope="session")
def study() -> StudyDefinition:
    return StudyDefinition.from_file(mappings_dir() / "study.toml")


@pytest.fixture(scope="session")
def catalogue() -> AnalyteCatalogue:
    return AnalyteCatalogue.from_file(mappings_dir() / "analytes.toml")
