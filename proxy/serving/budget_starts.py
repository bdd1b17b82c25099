"""Where a budget's counter starts in a period: what its owner (a key or a team)
had already spent in it, as the ledger says. Budgets ask only when the state store
has no counter for that owner and period — its first request in the period, an
in-memory store after a restart, a Redis (Cluster) that lost its data — so a
request waits for this read at most once per owner and period.

One read serves many: the ledger is asked for every owner of a kind (key or team)
at once, and callers that ask while a read runs share it, so a burst of first
requests (midnight UTC, a Redis restarted empty) costs a few queries, not one per
owner. A read that has finished is never reused: a later start sees what was
spent since. When the ledger cannot answer in time, the counter starts from zero
and a warning says so: the request is not held up longer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from ..ledger import Filters, Ledger

log = logging.getLogger("tollgate")


class BudgetStarts:
    def __init__(self, *, timeout_s: float = 5.0) -> None:
        self._ledger: Ledger | None = None
        self._timeout_s = timeout_s
        self._reads: dict[tuple[str, dt.date], asyncio.Task[dict[str, int]]] = {}  # running only

    def attach(self, ledger: Ledger) -> None:
        """Read from `ledger` from now on; until then (and without a ledger) counters start from zero."""
        self._ledger = ledger

    async def spent_since(self, scope: str, name: str, since: dt.date) -> int:
        """What the key or team (`scope`: key | team) `name` has spent since `since`, in nano-dollars."""
        if self._ledger is None:
            return 0
        field = "key_id" if scope == "key" else "team"
        try:
            async with asyncio.timeout(self._timeout_s):
                spent = await asyncio.shield(self._read(field, since))
        except Exception as error:
            log.warning(
                "could not read what a budget's owner has spent from the ledger: its counter starts from zero",
                extra={"budget_owner": f"{scope} '{name}'", "since": since.isoformat(), "cause": type(error).__name__},
            )
            return 0
        return spent.get(name, 0)

    def _read(self, field: str, since: dt.date) -> asyncio.Task[dict[str, int]]:
        """The running read of `field`'s spend since `since`, started now if none runs."""
        key = (field, since)
        if (read := self._reads.get(key)) is None:
            read = self._reads[key] = asyncio.ensure_future(self._spend(field, since))
            read.add_done_callback(lambda _: self._reads.pop(key, None))
        return read

    async def _spend(self, field: str, since: dt.date) -> dict[str, int]:
        assert self._ledger is not None
        groups = await self._ledger.spend([field], Filters(since=since.isoformat()))
        return {group.key[field]: group.cost_nanousd for group in groups}
