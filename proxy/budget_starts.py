"""Where a budget's counter starts in a period: what its owner (a key or a team)
had already spent in it, as the ledger says. Budgets ask only when the state store
has no counter for that owner and period — its first request in the period, an
in-memory store after a restart, a Redis (Cluster) that lost its data — so a
request waits for this read at most once per owner and period.

One read serves many: the ledger is asked for every owner of a kind (key or team)
at once, and a read that is running or finished less than a second ago is shared,
so a burst of first requests (midnight UTC, a Redis restarted empty) costs a few
queries, not one per owner. When the ledger cannot answer in time, the counter
starts from zero and a warning says so: the request is not held up longer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from .ledger import Filters, Ledger

log = logging.getLogger("tollgate")


@dataclass
class _Read:
    task: asyncio.Task[dict[str, int]]
    finished_at: float | None = None


class BudgetStarts:
    def __init__(
        self, *, reuse_s: float = 1.0, timeout_s: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ledger: Ledger | None = None
        self._reuse_s = reuse_s
        self._timeout_s = timeout_s
        self._clock = clock
        self._reads: dict[tuple[str, dt.date], _Read] = {}

    def attach(self, ledger: Ledger) -> None:
        """Read from `ledger` from now on; until then (and without a ledger) counters start from zero."""
        self._ledger = ledger

    async def spent_since(self, scope: str, name: str, since: dt.date) -> int:
        """What the key or team (`scope`: key | team) `name` has spent since `since`, in nano-dollars."""
        if self._ledger is None:
            return 0
        field = "key_id" if scope == "key" else "team"
        read = self._read(field, since)
        try:
            async with asyncio.timeout(self._timeout_s):
                spent = await asyncio.shield(read.task)
        except Exception as error:
            log.warning(
                "could not read what a budget's owner has spent from the ledger: its counter starts from zero",
                extra={"budget_owner": f"{scope} '{name}'", "since": since.isoformat(), "cause": type(error).__name__},
            )
            return 0
        return spent.get(name, 0)

    def _read(self, field: str, since: dt.date) -> _Read:
        """The read of `field`'s spend since `since` to share, started now if there is none fresh."""
        now = self._clock()
        for key, read in list(self._reads.items()):
            stale = read.finished_at is not None and now - read.finished_at > self._reuse_s
            failed = read.task.done() and (read.task.cancelled() or read.task.exception() is not None)
            if stale or failed:
                del self._reads[key]
        if (read := self._reads.get((field, since))) is None:
            read = self._reads[(field, since)] = _Read(asyncio.ensure_future(self._spend(field, since)))
            read.task.add_done_callback(lambda _, read=read: setattr(read, "finished_at", self._clock()))
        return read

    async def _spend(self, field: str, since: dt.date) -> dict[str, int]:
        assert self._ledger is not None
        groups = await self._ledger.spend([field], Filters(since=since.isoformat()))
        return {group.key[field]: group.cost_nanousd for group in groups}
