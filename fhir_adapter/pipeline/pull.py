"""``pull``: a Bulk Data export of the EHR, downloaded and loaded as one export.

The export in progress is kept in the store (its polling URL, then its manifest), so a pull
stopped at any point resumes: from the polling URL while the server still has the export,
else from the start; the files already on disk are not fetched again, and loading a file
again stores nothing twice (an unchanged resource is not a new version). The export's
``transactionTime`` becomes the next ``--since auto`` only in the transaction that ends the
pull, after the load committed; the polling URL is then deleted on the server (Bulk Data
Access IG v2, export.html, "Bulk Data Delete Request").
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson

from fhir_adapter.outbound.bulk_client import BulkClient, BulkFailed, ExportRequest, Manifest
from fhir_adapter.pipeline.outcomes import LoadSummary
from fhir_adapter.store.keys import sender_id_key

if TYPE_CHECKING:
    from fhir_adapter.pipeline.orchestrator import Pipeline

__all__ = ["DEFAULT_TYPES", "PullReport", "ehr_sender", "pull"]

#: What the trial uses (the default ``_type``); ResearchStudy too, so that a ResearchSubject's
#: ``study: ResearchStudy/<EHR id>`` can be known as this study.
DEFAULT_TYPES = ("Patient", "ResearchSubject", "Observation", "MedicationAdministration",
                 "Specimen", "ResearchStudy")
#: Enrollment files first: they are loaded first anyway, and a pull stopped early has them.
_FIRST = {"ResearchSubject": 0, "Patient": 1}

Progress = Callable[[str], None]


def ehr_sender(base_url: str) -> str:
    """The sender under which an EHR's resources keep their ids (``Type/id`` references of
    its exports and notifications resolve among them)."""
    return f"ehr:{base_url.rstrip('/')}"[:200]


@dataclass
class PullReport:
    """What a pull did: the export, its files, the load, the withdrawals, the server's errors."""

    base_url: str
    since: str | None
    transaction_time: str = ""
    resumed: bool = False
    files: int = 0
    summary: LoadSummary = field(default_factory=LoadSummary)
    server_errors: list[str] = field(default_factory=list)
    withdrawn: int = 0
    deleted_unknown: int = 0
    enrollment: str = ""
    delete_status: int = 0

    @property
    def exit_code(self) -> int:
        return max(self.summary.exit_code, 1 if self.server_errors else 0)


def pull(pipeline: Pipeline, client: BulkClient, request: ExportRequest, *, workdir: Path,
         since_auto: bool = False, progress: Progress | None = None) -> PullReport:
    """Kick off (or resume) an export, download its files, load them, keep the watermark."""
    base = client.base_url
    sender = ehr_sender(base)
    with pipeline.store.read() as unit:
        job = unit.pull_job(base)
        mark = unit.pull_watermark(base)
    manifest: Manifest | None = None
    status_url = ""
    resumed = False
    if job is not None:
        status_url = job.status_url
        try:
            manifest = Manifest.of(job.manifest) if job.manifest else \
                client.wait(status_url, progress)
            resumed = True
        except BulkFailed:
            manifest = None  # the server no longer has it: start over
    since = mark if since_auto else request.since
    report = PullReport(base, since, resumed=resumed)
    if manifest is None:
        asked = ExportRequest(request.types, request.group, request.patient_level, since)
        status_url = client.kick_off(asked)
        with pipeline.store.transaction() as unit:
            unit.start_pull_job(base, status_url,
                                f"{asked.path()}?{urlencode(asked.parameters())}")
        manifest = client.wait(status_url, progress)
    with pipeline.store.transaction() as unit:
        unit.set_pull_manifest(base, _manifest_body(manifest))
    folder = Path(workdir) / hashlib.sha256(status_url.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    files = _download(client, manifest.output, folder, "output", manifest.requires_token,
                      progress)
    report.files = len(files)
    report.transaction_time = manifest.transaction_time
    for path in _download(client, manifest.error, folder, "error", manifest.requires_token):
        report.server_errors += list(_outcome_lines(path))
    report.summary = pipeline.ingest_paths(files, sender=sender)
    for path in _download(client, manifest.deleted, folder, "deleted", manifest.requires_token):
        found, unknown = _withdraw(pipeline, path, sender)
        report.withdrawn += found
        report.deleted_unknown += unknown
    report.enrollment = _enrollment_source(report.summary, request)
    with pipeline.store.transaction() as unit:
        unit.finish_pull(base, manifest.transaction_time)
    report.delete_status = client.delete(status_url)
    shutil.rmtree(folder, ignore_errors=True)
    return report


def _manifest_body(manifest: Manifest) -> dict[str, Any]:
    return {"transactionTime": manifest.transaction_time,
            "requiresAccessToken": manifest.requires_token, "output": manifest.output,
            "deleted": manifest.deleted, "error": manifest.error}


def _download(client: BulkClient, items: list[dict[str, Any]], folder: Path, kind: str,
              with_token: bool, progress: Progress | None = None) -> list[Path]:
    ordered = sorted(enumerate(items),
                     key=lambda pair: (_FIRST.get(str(pair[1].get("type")), 2), pair[0]))
    paths = []
    for n, item in ordered:
        name = f"{kind}-{n:04d}-{str(item.get('type') or 'file')}.ndjson"
        if progress is not None:
            progress(f"download {item.get('type')} ({n + 1}/{len(items)})")
        paths.append(client.download(str(item["url"]), folder / name, with_token=with_token))
    return paths


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                try:
                    value = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(value, dict):
                    yield value


def _outcome_lines(path: Path) -> Iterator[str]:
    """One line per issue of the OperationOutcomes of an error file."""
    for outcome in _lines(path):
        for issue in outcome.get("issue") or []:
            if isinstance(issue, dict):
                text = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
                yield f"{issue.get('severity', 'error')}: {text or issue.get('code')}"


def _withdraw(pipeline: Pipeline, path: Path, sender: str) -> tuple[int, int]:
    """The ``deleted`` file's Bundles (IG v2, "Bulk Data Output File Request": each entry a
    ``DELETE`` with ``request.url`` ``Type/id``): a kept Observation of an analyte is
    withdrawn (its value no longer counts); (withdrawn, not known here)."""
    found = unknown = 0
    for bundle in _lines(path):
        for entry in bundle.get("entry") or []:
            request = entry.get("request") if isinstance(entry, dict) else None
            url = str((request or {}).get("url") or "")
            rtype, _, rid = url.rstrip("/").rpartition("/")
            rtype = rtype.rsplit("/", 1)[-1]
            if not rid or not rtype:
                continue
            with pipeline.store.transaction() as unit:
                stored = unit.find([sender_id_key(rtype, sender, rid)])
                owner = unit.withdraw_measurement(stored.id, "entered-in-error") \
                    if stored is not None and rtype == "Observation" else None
                if owner is not None:
                    pipeline.writer.after_queue(unit, {owner})
                    found += 1
                else:
                    unknown += 1
    pipeline.recompute_stale()
    return found, unknown


def _enrollment_source(summary: LoadSummary, request: ExportRequest) -> str:
    """Where the participants of this pull came from (the export's ResearchSubjects, or the
    roster of ``enroll``)."""
    subjects = summary.by_type.get("ResearchSubject")
    if subjects is not None and subjects.read:
        return (f"enrollment: {subjects.read} ResearchSubject(s) in the export; Patients "
                "without one are kept when enrolled by the roster (enroll)")
    level = "Group" if request.group else "Patient-level" if request.patient_level else "system"
    return (f"enrollment: the {level} export carried no ResearchSubject; the roster "
            "(enroll, enroll --from FILE.csv) decides who is kept")
