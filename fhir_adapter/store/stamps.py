"""A stamp of the whole state of the data: what views derived from every participant cache by."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from fhir_adapter.store.base import UnitBase
from fhir_adapter.store.schema import audit, endpoint_result, infusion, measurement, participant

__all__ = ["StampRepository"]


class StampRepository(UnitBase):
    def data_stamp(self) -> tuple[Any, ...]:
        """Changes with every write: each write leaves an audit row (the newest id), enrolling
        touches a participant (count, newest change), and results have their own stamp; the
        counts of measurements and infusions cover what a write removed."""
        row = self.conn.execute(select(
            select(func.max(audit.c.id)).scalar_subquery(),
            select(func.count()).select_from(participant).scalar_subquery(),
            select(func.max(participant.c.updated_at)).scalar_subquery(),
            select(func.count()).select_from(measurement).scalar_subquery(),
            select(func.count()).select_from(infusion).scalar_subquery(),
            select(func.count()).select_from(endpoint_result).scalar_subquery(),
            select(func.coalesce(func.sum(endpoint_result.c.version), 0)).scalar_subquery(),
        )).one()
        return tuple(row)
