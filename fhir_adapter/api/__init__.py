"""The FHIR REST endpoint (FastAPI): hospitals push Bundles, research servers pull results."""

from __future__ import annotations

from fhir_adapter.api.app import PipelinePort, create_app
from fhir_adapter.api.security import check_bind, is_loopback
from fhir_adapter.api.server import app_from_env, serve

__all__ = ["PipelinePort", "app_from_env", "check_bind", "create_app", "is_loopback", "serve"]
