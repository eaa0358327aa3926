"""The thread of a server process that runs export jobs and removes expired ones.

Every server process runs one; they share the jobs through the database. A job whose process
died (killed, or the machine restarted) is taken up by the next process to look: at once when
the dead process was on this machine, else once its heartbeat is older than ``STALE``; it is
run again from its start, under a new transactionTime, its half-written files discarded.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from fhir_adapter.pipeline.bulk_export import ExportRunner
from fhir_adapter.store.export_files import ExportFiles
from fhir_adapter.store.exports import ExportJobs
from fhir_adapter.store.owners import dead_here

__all__ = ["STALE", "ExportWorker"]

log = logging.getLogger("fhir_adapter.export")

#: A running job whose owner has not moved for this long is taken over.
STALE = timedelta(seconds=60)
_IDLE_SECONDS = 2.0


class ExportWorker:
    """``start()`` the thread, ``wake()`` it after a kick-off, ``stop()`` it at shutdown."""

    def __init__(self, runner: ExportRunner, jobs: ExportJobs, files: ExportFiles) -> None:
        self.runner = runner
        self.jobs = jobs
        self.files = files
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="export-worker", daemon=True)

    def start(self) -> ExportWorker:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.step()
            except Exception:  # the database may be away for a moment: try again later
                log.exception("export worker step failed")
                worked = False
            if not worked:
                self._wake.wait(_IDLE_SECONDS)
                self._wake.clear()

    def step(self) -> bool:
        """Run one job if one waits; remove what expired. True when a job was run."""
        self.clean()
        dead = dead_here(self.jobs.running_owners())
        job = self.jobs.claim(owner=self.runner.owner, stale=STALE, dead=dead)
        if job is None:
            return False
        log.info("export %s started (%s)", job.id, job.request)
        self.runner.run(job)
        return True

    def clean(self) -> None:
        """Files of expired jobs, and of jobs no longer known (deleted by a client)."""
        for job_id in self.jobs.expired(datetime.now(UTC)):
            self.files.remove(job_id)
        folders = self.files.jobs()  # before the jobs: a folder is made after its job
        for job_id in folders - self.jobs.known():
            self.files.remove(job_id)
