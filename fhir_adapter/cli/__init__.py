"""The command line ``fhir-adapter``: load, validate, report, publish and serve."""

from __future__ import annotations

# the modules register their commands
from fhir_adapter.cli import (  # noqa: F401
    clients,
    ehr,
    export,
    load,
    publish,
    server,
    subscriptions,
    workspace,
)
from fhir_adapter.cli.base import app, main

__all__ = ["app", "main"]
