"""The Bulk Data export service of a server process: its jobs, its files, its worker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from fhir_adapter.pipeline.bulk_export import ExportRunner
from fhir_adapter.pipeline.export_worker import ExportWorker
from fhir_adapter.publication import Publication
from fhir_adapter.results.group import study_group
from fhir_adapter.settings import Settings
from fhir_adapter.store.export_files import ExportFiles
from fhir_adapter.store.exports import ExportJobs
from fhir_adapter.store.owners import owner_name

__all__ = ["ExportService", "export_dir", "start_exports"]


def export_dir(settings: Settings) -> Path:
    """``FHIR_ADAPTER_EXPORT_DIR``, else ``fhir-adapter-exports`` beside a SQLite database
    file, else in the working directory."""
    if settings.export_dir is not None:
        return settings.export_dir
    url = settings.db_url()
    database = url.split("///", 1)[1].split("?", 1)[0] if url.startswith("sqlite:///") else ""
    if database and database != ":memory:":
        return Path(database).expanduser().resolve().parent / "fhir-adapter-exports"
    return Path.cwd() / "fhir-adapter-exports"


@dataclass
class ExportService:
    publication: Publication
    jobs: ExportJobs
    files: ExportFiles
    worker: ExportWorker

    def wake(self) -> None:
        self.worker.wake()

    def stop(self) -> None:
        self.worker.stop()

    def group(self) -> dict[str, Any]:
        with self.publication.store.read() as unit:
            subjects = [p.subject for p in unit.participants()]
        return study_group(self.publication.study, subjects)


def start_exports(publication: Publication, settings: Settings, *,
                  run: bool = True) -> ExportService:
    """The service over ``publication``'s store; its worker started unless ``run`` is False."""
    jobs = ExportJobs(publication.store)
    files = ExportFiles(export_dir(settings))
    runner = ExportRunner(publication, jobs, files, owner=owner_name(),
                          retention=timedelta(seconds=settings.export_retention_seconds),
                          batch=max(1, settings.export_batch))
    worker = ExportWorker(runner, jobs, files)
    if run:
        worker.start()
    return ExportService(publication, jobs, files, worker)
