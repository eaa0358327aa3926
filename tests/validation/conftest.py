"""Validation tests run offline: any attempt to open a socket fails the test."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from fhir_adapter.paths import mappings_dir
from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition
from fhir_adapter.validation import Validator

DATA = Path(__file__).resolve().parents[1] / "data" / "validation"


class _NoNetwork(socket.socket):
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise OSError("network access attempted during an offline validation test")


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "socket", _NoNetwork)
    monkeypatch.setattr(socket, "create_connection", _NoNetwork)


@pytest.fixture(scope="session")
def catalogue() -> AnalyteCatalogue:
    return AnalyteCatalogue.from_file(mappings_dir() / "analytes.toml")


@pytest.fixture(scope="session")
def study() -> StudyDefinition:
    return StudyDefinition.from_file(mappings_dir() / "study.toml")


@pytest.fixture(scope="session")
def validator(catalogue: AnalyteCatalogue, study: StudyDefinition) -> Validator:
    return Validator(catalogue, study)
