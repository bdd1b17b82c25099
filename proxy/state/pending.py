"""Writes to the state store that must land although it cannot be reached now:
a request's settle (the ledger knows what it cost, the budget must learn it too)
and what a refused request gives back. Each waits here, in this process, and is
retried with backoff until the store takes it; each is idempotent or harmless to
repeat, so a write whose answer was lost may safely run again.

Only requests admitted before the outage began (and refusals during it) leave
writes here, as the others are refused, so the queue stays about as long as the
requests in flight. It is bounded all the same: past `limit`, the oldest write is
dropped (logged), and the reservation it would have settled lapses on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from policies.counters import StateUnavailable

log = logging.getLogger("tollgate")

Write = Callable[[], Awaitable[None]]
Report = Callable[[int], None]  # told how many writes wait, at each change (a metric's gauge)


class PendingWrites:
    def __init__(
        self,
        *,
        limit: int = 10_000,
        first_wait_s: float = 0.05,
        max_wait_s: float = 1.0,
        report: Report | None = None,
    ) -> None:
        self._report = report or _ignore
        self._writes: deque[Write] = deque()
        self._limit = limit
        self._first_wait_s = first_wait_s
        self._max_wait_s = max_wait_s
        self._retrying: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._writes)

    async def run(self, write: Write) -> None:
        """Write now; if the store cannot be reached, keep the write and retry it."""
        try:
            await write()
        except StateUnavailable:
            self._keep(write)

    async def aclose(self, timeout_s: float = 2.0) -> None:
        """At shutdown: a last chance for what waits; what cannot land is logged (its holds lapse)."""
        if self._retrying is not None:
            self._retrying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrying
        cause = ""
        try:
            async with asyncio.timeout(timeout_s):
                await self._drain()
        except StateUnavailable as error:
            cause = error.cause
        except TimeoutError:
            cause = "timeout"
        if self._writes:
            log.error(
                "shutting down with writes the state store never took: their reservations lapse",
                extra={"pending_writes": len(self._writes), "cause": cause},
            )

    def _keep(self, write: Write) -> None:
        if not self._writes:
            log.warning("the state store cannot be reached: settles wait in this process until it can")
        if len(self._writes) >= self._limit:
            self._writes.popleft()
            log.error("too many writes wait for the state store: the oldest is dropped", extra={"limit": self._limit})
        self._writes.append(write)
        self._report(len(self._writes))
        if self._retrying is None or self._retrying.done():
            self._retrying = asyncio.get_running_loop().create_task(self._retry())

    async def _retry(self) -> None:
        wait_s = self._first_wait_s
        while self._writes:
            await asyncio.sleep(wait_s)
            try:
                await self._drain()
            except StateUnavailable:
                wait_s = min(wait_s * 2, self._max_wait_s)
        log.info("the state store is back: every waiting write has landed")

    async def _drain(self) -> None:
        """Write what waits, oldest first, until it is all written or the store fails again."""
        while self._writes:
            write = self._writes[0]
            try:
                await write()
            except StateUnavailable:
                raise
            except Exception:  # not an outage: retrying will not help
                log.exception("a write to the state store failed and is dropped")
            if self._writes and self._writes[0] is write:  # unless the bound dropped it meanwhile
                self._writes.popleft()
            self._report(len(self._writes))


def _ignore(count: int) -> None:
    pass
