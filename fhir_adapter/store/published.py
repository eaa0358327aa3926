"""Bulk reads for publishing results: the stored source Observations of some participants."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from fhir_adapter.store.base import UnitBase
from fhir_adapter.store.schema import measurement, resource

__all__ = ["source_documents"]


def source_documents(unit: UnitBase, subjects: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``Observation/<adapter id>`` -> the Observation as stored, for every measurement of
    these participants (withdrawn ones included: a withdrawn result still names its source)."""
    wanted = sorted(set(subjects))
    if not wanted:
        return {}
    rows = unit.conn.execute(
        select(resource.c.type, resource.c.id, resource.c.current)
        .join(measurement, measurement.c.resource_id == resource.c.id)
        .where(measurement.c.subject.in_(wanted))
    )
    return {f"{r.type}/{r.id}": dict(r.current) for r in rows}

