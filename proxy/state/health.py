"""Is the state store reachable? A PING a second, in the background, while the
policies in service keep counters there; `/readyz` reads the answer, so a load
balancer stops sending requests that would only be refused. Requests never wait
for it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from policies.counters import StateUnavailable

log = logging.getLogger("tollgate")


class Pingable(Protocol):
    async def ping(self) -> None: ...


class StoreHealth:
    def __init__(
        self,
        store: Pingable,
        *,
        needed: Callable[[], bool],
        interval_s: float = 1.0,
        report: Callable[[bool], None] | None = None,
    ) -> None:
        self._report = report  # told the answer of each check (a metric's gauge)
        self._store = store
        self._needed = needed  # do the policies in service use the store?
        self._interval_s = interval_s
        self._watching: asyncio.Task[None] | None = None
        self.reachable = True

    async def start(self) -> None:
        """Check once now, so readiness is right from the first request, then every interval."""
        await self.check()
        self._watching = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._watching is not None:
            self._watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watching

    async def check(self) -> None:
        reachable, cause = True, ""
        if self._needed():
            try:
                await self._store.ping()
            except StateUnavailable as error:
                reachable, cause = False, error.cause
        if reachable != self.reachable:
            if reachable:
                log.info("the state store is reachable again: ready")
            else:
                log.error("the state store cannot be reached: not ready", extra={"cause": cause})
        self.reachable = reachable
        if self._report is not None:
            self._report(reachable)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.check()
            except Exception:  # a bug here must not stop the checks
                log.exception("the state store's health check failed")
