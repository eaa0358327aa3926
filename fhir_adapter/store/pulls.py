"""Bulk Data pulls from an EHR: the export in progress (so that a pull stopped at any point can
resume from its polling URL) and the watermark of the next ``_since`` (the ``transactionTime``
of the last export whose load committed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from fhir_adapter.store.base import UnitBase
from fhir_adapter.store.keys import from_db_time, to_utc
from fhir_adapter.store.schema import pull_job, pull_watermark

__all__ = ["PullJob", "PullRepository"]


@dataclass(frozen=True, slots=True)
class PullJob:
    """An export kicked off on ``base_url`` and not yet loaded: where to poll, what was asked,
    and its manifest once the server gave it."""

    base_url: str
    status_url: str
    request: str
    kicked_at: datetime
    manifest: dict[str, Any] | None


class PullRepository(UnitBase):
    """Pull jobs and watermarks, one of each per EHR base URL."""

    def pull_job(self, base_url: str) -> PullJob | None:
        row = self.conn.execute(
            select(pull_job).where(pull_job.c.base_url == base_url)).mappings().first()
        if row is None:
            return None
        return PullJob(row["base_url"], row["status_url"], row["request"],
                       from_db_time(row["kicked_at"]), row["manifest"])

    def start_pull_job(self, base_url: str, status_url: str, request: str) -> None:
        self.conn.execute(delete(pull_job).where(pull_job.c.base_url == base_url))
        self.conn.execute(insert(pull_job).values(
            base_url=base_url, status_url=status_url, request=request,
            kicked_at=to_utc(self.now()), manifest=None))

    def set_pull_manifest(self, base_url: str, manifest: dict[str, Any]) -> None:
        self.conn.execute(update(pull_job).where(pull_job.c.base_url == base_url)
                          .values(manifest=manifest))

    def drop_pull_job(self, base_url: str) -> None:
        self.conn.execute(delete(pull_job).where(pull_job.c.base_url == base_url))

    def pull_watermark(self, base_url: str) -> str | None:
        """The ``transactionTime`` of the last export loaded from this EHR, as it gave it."""
        value = self.conn.execute(select(pull_watermark.c.transaction_time).where(
            pull_watermark.c.base_url == base_url)).scalar()
        return str(value) if value is not None else None

    def finish_pull(self, base_url: str, transaction_time: str) -> None:
        """The export is loaded: its transactionTime becomes the next ``_since``; the job goes."""
        self.drop_pull_job(base_url)
        self.conn.execute(delete(pull_watermark).where(pull_watermark.c.base_url == base_url))
        self.conn.execute(insert(pull_watermark).values(
            base_url=base_url, transaction_time=transaction_time, pulled_at=to_utc(self.now())))
