"""The unit of work every repository method runs in: one connection, one transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection

__all__ = ["Clock", "UnitBase"]

Clock = Callable[[], datetime]


class UnitBase:
    """State shared by the repository mixins: the open connection and the clock."""

    def __init__(self, connection: Connection, clock: Clock) -> None:
        self.conn = connection
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()
