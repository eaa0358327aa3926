"""Bulk reads for publishing: the stored source Observations and MedicationAdministrations of
some participants."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from fhir_adapter.store.base import UnitBase
from fhir_adapter.store.keys import from_db_time
from fhir_adapter.store.schema import endpoint_result, infusion, measurement, resource

__all__ = ["newest_result_writes", "source_documents", "stored_elements"]


def source_documents(unit: UnitBase, subjects: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``Observation/<adapter id>`` -> the Observation as stored, for every measurement of
    these participants (withdrawn ones included: a withdrawn result still names its source);
    its ``meta`` is this store's: the version kept and when it was written."""
    wanted = sorted(set(subjects))
    if not wanted:
        return {}
    rows = unit.conn.execute(
        select(resource.c.type, resource.c.id, resource.c.current, resource.c.version,
               resource.c.last_updated)
        .join(measurement, measurement.c.resource_id == resource.c.id)
        .where(measurement.c.subject.in_(wanted))
    )
    return {f"{r.type}/{r.id}": {**r.current, "meta": {
        "versionId": str(r.version), "lastUpdated": from_db_time(r.last_updated).isoformat()}}
        for r in rows}


def newest_result_writes(unit: UnitBase) -> dict[str, datetime]:
    """Per participant with results: when one of its results was last written."""
    rows = unit.conn.execute(
        select(endpoint_result.c.subject, func.max(endpoint_result.c.last_updated))
        .group_by(endpoint_result.c.subject))
    return {str(subject): from_db_time(at) for subject, at in rows if at is not None}



def stored_elements(unit: UnitBase, kind: str, subjects: Iterable[str],
                    elements: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``<kind>/<adapter id>`` -> {element: value} of these top-level elements of every stored
    Observation (``kind`` Observation: the measurements) or MedicationAdministration (the
    infusions) of these participants; an element the resource lacks is absent. Only the
    elements are read from the database, not whole resources."""
    wanted = sorted(set(subjects))
    owned = {"Observation": measurement, "MedicationAdministration": infusion}[kind]
    if not wanted or not elements:
        return {}
    columns = [resource.c.current[name] for name in elements]
    rows = unit.conn.execute(
        select(resource.c.id, *columns)
        .join(owned, owned.c.resource_id == resource.c.id)
        .where(owned.c.subject.in_(wanted))
    )
    return {f"{kind}/{row[0]}": {name: value for name, value in zip(elements, row[1:],
                                                                   strict=True)
                                 if value is not None}
            for row in rows}
