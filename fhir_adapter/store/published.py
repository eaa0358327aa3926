"""Bulk reads for publishing: the stored source Observations and MedicationAdministrations of
some participants."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select

from fhir_adapter.store.base import UnitBase
from fhir_adapter.store.schema import infusion, measurement, resource

__all__ = ["source_documents", "stored_elements"]


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
