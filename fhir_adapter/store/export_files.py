"""The NDJSON files of Bulk Data exports: written under a temporary name, renamed when whole.

A file is served only once its job is completed, and a completed job's files all carry their
final names: a file cut short by a crash keeps its ``.part`` name and is never served.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["ExportFiles", "FileEntry", "JobWriter"]

_PART = ".part"
_NAME = re.compile(r"^(output|deleted|error)-[A-Z][A-Za-z]+\.ndjson$")
_JOB = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One finished file: ``kind`` output, deleted or error; the resource type of its lines
    (of the resources the Bundles of a ``deleted`` file withdraw, there); its line count."""

    kind: str
    resource_type: str
    name: str
    count: int


class JobWriter:
    """Lines of one job, one file per kind and resource type, in the order written."""

    def __init__(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)  # what a job cut short left
        folder.mkdir(parents=True)
        self.folder = folder
        self._files: dict[tuple[str, str], tuple[IO[bytes], int]] = {}

    def write(self, kind: str, resource_type: str, lines: list[bytes]) -> None:
        if not lines:
            return
        key = (kind, resource_type)
        handle, count = self._files.get(key) or (self._open(kind, resource_type), 0)
        handle.write(b"\n".join(lines) + b"\n")
        self._files[key] = (handle, count + len(lines))

    def _open(self, kind: str, resource_type: str) -> IO[bytes]:
        return (self.folder / f"{kind}-{resource_type}.ndjson{_PART}").open("wb")

    def commit(self) -> list[FileEntry]:
        """Flush every file to disk and give each its final name."""
        entries = []
        for (kind, resource_type), (handle, count) in self._files.items():
            handle.flush()
            _fsync(handle)
            handle.close()
            name = f"{kind}-{resource_type}.ndjson"
            (self.folder / f"{name}{_PART}").rename(self.folder / name)
            entries.append(FileEntry(kind, resource_type, name, count))
        self._files.clear()
        return entries

    def discard(self) -> None:
        for handle, _ in self._files.values():
            handle.close()
        self._files.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


def _fsync(handle: IO[bytes]) -> None:
    import os

    os.fsync(handle.fileno())


class ExportFiles:
    """The folder holding one sub-folder per export job."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def writer(self, job_id: str) -> JobWriter:
        return JobWriter(self._folder(job_id))

    def path(self, job_id: str, name: str) -> Path | None:
        """A finished file of a job, or None (unknown, unfinished or removed)."""
        if not _NAME.match(name):
            return None
        path = self._folder(job_id) / name
        return path if path.is_file() else None

    def remove(self, job_id: str) -> None:
        shutil.rmtree(self._folder(job_id), ignore_errors=True)

    def jobs(self) -> set[str]:
        if not self.root.is_dir():
            return set()
        return {p.name for p in self.root.iterdir() if p.is_dir() and _JOB.match(p.name)}

    def _folder(self, job_id: str) -> Path:
        if not _JOB.match(job_id):
            raise ValueError(f"not an export job id: {job_id!r}")
        return self.root / job_id
