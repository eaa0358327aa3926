"""Fixtures of the result tests: definition files, a builder on a clock frozen off UTC."""

from __future__ import annotations

import pytest

from fhir_adapter.paths import mappings_dir
from fhir_adapter.results import ResultBuilder
from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition
from fhir_adapter.trial.model import ParticipantEndpoints, StudySummary
from tests.results.result_fixtures import KEY, NOW, hand_endpoints, hand_sources, hand_summary


@pytest.fixture(scope="session")
def study() -> StudyDefinition:
    return StudyDefinition.from_file(mappings_dir() / "study.toml")


@pytest.fixture(scope="session")
def catalogue() -> AnalyteCatalogue:
    return AnalyteCatalogue.from_file(mappings_dir() / "analytes.toml")


@pytest.fixture()
def builder(study: StudyDefinition, catalogue: AnalyteCatalogue) -> ResultBuilder:
    return ResultBuilder(study, catalogue, pseudonym_key=KEY, clock=lambda: NOW)


@pytest.fixture()
def endpoints() -> list[ParticipantEndpoints]:
    return hand_endpoints()


@pytest.fixture()
def sources() -> dict[str, dict]:
    return hand_sources()


@pytest.fixture()
def summary() -> StudySummary:
    return hand_summary()
