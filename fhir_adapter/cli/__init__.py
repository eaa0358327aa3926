"""The command line ``fhir-adapter``: load, validate, report, publish and serve."""

from __future__ import annotations

# the modules register their commands
from fhir_adapter.cli import clients, export, load, publish, server, workspace  # noqa: F401
from fhir_adapter.cli.base import app, main

__all__ = ["app", "main"]
