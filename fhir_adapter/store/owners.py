"""Who holds a job or a lease: a process, named by its host and id, and whether it is gone."""

from __future__ import annotations

import os
import socket

__all__ = ["dead_here", "owner_name"]


def owner_name() -> str:
    """This process, as a job's owner: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def dead_here(owners: set[str]) -> set[str]:
    """The owners among these (``host:pid``, maybe followed by ``/name``) that were processes
    of this machine and are gone."""
    host = socket.gethostname()
    dead = set()
    for owner in owners:
        name, _, pid = owner.split("/", 1)[0].rpartition(":")
        if name != host or not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            dead.add(owner)
        except PermissionError:
            continue
    return dead
