"""The data manager's dashboard under /ui: server-rendered pages over fhir_adapter.workspace."""

from __future__ import annotations

from fhir_adapter.api.ui.pages import follow_data, router

__all__ = ["follow_data", "router"]
