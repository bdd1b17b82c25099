"""Work that runs beside requests, tracked so that shutdown can wait for it (storing
a request's images after its answer, before the ledger closes) or stop it (a
reload's watchers and the closing of a retired config's providers)."""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import Coroutine, Generator
from typing import Any

log = logging.getLogger("tollgate")


class Background:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._done)

    def start(self, work: Coroutine[Any, Any, Any]) -> None:
        """Like `spawn`, but `work` begins now, in the caller's turn, and becomes a task
        only if it has to wait: settling counters kept in memory, once per request, never
        waits, and a task for it cost more than the settling (what Python 3.12's eager
        tasks do)."""
        try:
            waiting_on = work.send(None)
        except StopIteration:
            return
        except Exception:
            log.exception("background work failed")
            return
        self.spawn(_go_on(work, waiting_on))

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work failed", exc_info=task.exception())

    async def wait(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.wait()


@types.coroutine
def _go_on(work: Coroutine[Any, Any, Any], waiting_on: Any) -> Generator[Any, Any, Any]:
    """The rest of a coroutine that was started by hand and is waiting on `waiting_on` (a
    future): handed up to the task that runs this, which resumes it when that is done."""
    while True:
        try:
            sent = yield waiting_on
        except BaseException as error:  # cancelled, say: passed on to where it waits
            try:
                waiting_on = work.throw(error)
            except StopIteration as done:
                return done.value
        else:
            try:
                waiting_on = work.send(sent)
            except StopIteration as done:
                return done.value
