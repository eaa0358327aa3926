"""Pausing Python's cyclic garbage collector around work that allocates many objects at once."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection inside the block; the collector runs again after it, as before.

    Decoding or building many containers (a chunk of NDJSON lines, every stored result) makes
    the collector scan the young objects again and again, and the old ones ever more often as
    they grow: measured on 60,636 stored results, decoding took 2.5 s with the collector and
    0.48 s without. Nothing is lost: cycles made in the block are collected after it. Nested
    blocks leave the collector as the outermost one found it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
