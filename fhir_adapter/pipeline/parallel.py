"""Validation of NDJSON lines in worker processes, ahead of the one process that writes.

Validation is pure computation and half the cost of a bulk line; the database writes must stay
in one process (one transaction per chunk). So the lines of a large file go, in batches, to
worker processes that parse and validate them, while this process maps and stores the lines
validated before. A worker only answers "no error" or "look again": a line it does not pass,
and every Patient (whose profile depends on enrollment, which only the writer knows), is
validated again here, exactly as without workers, so outcomes and messages do not change.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import islice
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from fhir_adapter.settings import Settings

__all__ = ["BATCH_LINES", "MIN_BYTES", "Prevalidator", "worker_count"]

#: Lines sent to a worker at a time, and batches in flight per worker (memory stays bounded).
BATCH_LINES = 500
IN_FLIGHT = 3
#: Files smaller than this are validated in this process (starting a worker costs ~1 s).
MIN_BYTES = 4 * 1024 * 1024

_validator: Any = None  # one per worker process, built by _start
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_WATCH_SECONDS = 1.0


def worker_count(settings: Settings | None) -> int:
    """Workers for a large file: the setting, else one less than the cores (0: none)."""
    if settings is None:
        return 0
    if settings.bulk_workers is not None:
        return max(0, settings.bulk_workers)
    return max(0, min((os.cpu_count() or 1) - 1, 4))


class Prevalidator:
    """A pool of validating workers for one file; use as a context manager."""

    def __init__(self, settings: Settings, workers: int) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process holding connections
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                         initializer=_start, initargs=(settings, os.getpid()))
        self._depth = workers * IN_FLIGHT
        self.broken = False

    def __enter__(self) -> Prevalidator:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def lines(self, lines: Iterator[tuple[int, bytes]]) -> Iterator[tuple[int, bytes, bool]]:
        """The same lines in the same order, each with True when a worker found no error.
        Should the workers fail (they could not start, say), every line left is marked
        False, so the writer validates it itself: slower, never different."""
        pending: deque[tuple[list[tuple[int, bytes]], Future[list[bool]] | None]] = deque()
        source = iter(lines)
        exhausted = False
        while True:
            while not exhausted and len(pending) < self._depth:
                batch = list(islice(source, BATCH_LINES))
                if not batch:
                    exhausted = True
                    break
                pending.append((batch, self._submit(batch)))
            if not pending:
                return
            batch, future = pending.popleft()
            verdicts = self._verdicts(future, len(batch))
            yield from ((n, text, ok) for (n, text), ok in zip(batch, verdicts, strict=True))

    def _submit(self, batch: list[tuple[int, bytes]]) -> Future[list[bool]] | None:
        if self.broken:
            return None
        try:
            return self._pool.submit(_check, [text for _, text in batch])
        except Exception:  # noqa: BLE001 - a broken pool: this process validates instead
            self.broken = True
            return None

    def _verdicts(self, future: Future[list[bool]] | None, size: int) -> list[bool]:
        if future is not None:
            try:
                return future.result()
            except Exception:  # noqa: BLE001 - as above
                self.broken = True
        return [False] * size


def _start(settings: Settings, parent: int) -> None:
    global _validator
    _die_with(parent)
    from fhir_adapter.pipeline.validating import offline_validator

    _validator = offline_validator(settings)


def _die_with(parent: int) -> None:
    """End this worker when the load that started it ends, even by kill -9 (no cleanup runs
    there): Linux signals it at once (``PR_SET_PDEATHSIG``); elsewhere, and should the
    parent have gone before the signal was asked for, a thread sees the parent change."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_WATCH_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _check(texts: list[bytes]) -> list[bool]:
    return [_passes(text) for text in texts]


def _passes(text: bytes) -> bool:
    try:
        resource = orjson.loads(text)
        if not isinstance(resource, dict) or resource.get("resourceType") == "Patient":
            return False
        issues = _validator.validate(resource, enrolled=False)
    except Exception:  # noqa: BLE001 - anything odd is looked at again by the writer
        return False
    return not any(i.severity in ("error", "fatal") for i in issues)
