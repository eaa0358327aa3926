"""The command line ``fhir-adapter``: load, validate, report, publish and serve."""

from __future__ import annotations

from fhir_adapter.cli import clients, load, publish, server  # noqa: F401  (they register the commands)
from fhir_adapter.cli.base import app, main

__all__ = ["app", "main"]
