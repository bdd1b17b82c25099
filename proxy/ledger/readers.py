"""Connections for reads, kept idle between them: opening one costs PostgreSQL a new
backend process, several milliseconds even on a quiet machine, which a read of one
row by its id should not pay each time. A few are kept (reads run on worker threads,
a few at once); one that failed is closed rather than kept."""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .sql import SqlLedger

KEPT = 4


class Readers:
    def __init__(self, sql: SqlLedger) -> None:
        self._sql = sql
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    def take(self) -> tuple[Any, bool]:
        """A connection, and whether it was kept from an earlier read (it may have gone stale)."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._sql.open(), False

    def give_back(self, connection: Any, *, healthy: bool) -> None:
        """After a read: its transaction is ended here; kept if it worked and there is room."""
        try:
            if healthy:
                connection.rollback()  # nothing of the read's stays open (its writes were committed)
        except Exception:  # it broke meanwhile: do not keep it
            healthy = False
        with self._lock:
            if healthy and len(self._idle) < KEPT:
                self._idle.append(connection)
                return
        _close(connection)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            _close(connection)


def _close(connection: Any) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection: nothing more to do
        connection.close()
