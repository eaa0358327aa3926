"""The data manager's workspace: schedule grid, queries and safety signals, participant views and
the statisticians' table, computed from the trial model (no FHIR, no database, no web)."""

from __future__ import annotations

from fhir_adapter.workspace.grid import DAY0, STATES, Cell, CellValue, GridRow, cell, columns, grid
from fhir_adapter.workspace.queries import KINDS, Query, queries
from fhir_adapter.workspace.rules import QueryRules
from fhir_adapter.workspace.snapshot import AuditEntry, ParticipantView, Snapshot, build_snapshot

__all__ = [
    "DAY0",
    "KINDS",
    "STATES",
    "AuditEntry",
    "Cell",
    "CellValue",
    "GridRow",
    "ParticipantView",
    "Query",
    "QueryRules",
    "Snapshot",
    "build_snapshot",
    "cell",
    "columns",
    "grid",
    "queries",
]
