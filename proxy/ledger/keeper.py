"""Keeping the ledger writer running while the proxy serves. A writer that dies (the
OOM killer, a signal meant for it alone, a bug) is restarted, loudly; the next one
resumes where it stopped, so rows are delayed, never lost. Until it runs again the
proxy is not ready (`/readyz` answers 503), so an orchestrator notices.

The parent learns of the death from the process's sentinel, a descriptor that
becomes readable when the process ends: no polling, nothing on the request path.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..telemetry.logs import describe_exit
from .writer import LedgerWriter

log = logging.getLogger("tollgate.ledger")

RESTART_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # a writer that keeps dying is not restarted in a tight loop
STEADY_S = 60.0  # a writer that ran this long was not crash-looping: the next restart is quick again


class WriterKeeper:
    def __init__(self, writer: LedgerWriter) -> None:
        self._writer = writer
        self._loop: asyncio.AbstractEventLoop | None = None
        self._restart: asyncio.TimerHandle | None = None
        self._started_at = time.monotonic()
        self._quick_deaths = 0
        self.running = True

    def start(self) -> None:
        """Watch the writer from the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._watch()

    def stop(self) -> None:
        """At shutdown, before the writer is stopped on purpose."""
        if self._loop is None:
            return
        if self.running:
            self._loop.remove_reader(self._writer.sentinel)
        if self._restart is not None:
            self._restart.cancel()
        self._loop = None

    def _watch(self) -> None:
        assert self._loop is not None
        self._loop.add_reader(self._writer.sentinel, self._died)
        self._started_at = time.monotonic()
        self.running = True

    def _died(self) -> None:
        assert self._loop is not None
        self._loop.remove_reader(self._writer.sentinel)
        self.running = False
        pid, exit_code = self._writer.pid, self._writer.reap()
        if time.monotonic() - self._started_at >= STEADY_S:
            self._quick_deaths = 0
        delay = RESTART_DELAYS_S[min(self._quick_deaths, len(RESTART_DELAYS_S) - 1)]
        self._quick_deaths += 1
        log.error(
            f"the ledger writer process died ({describe_exit(exit_code)}); restarting it in {delay:g} s. Rows wait "
            "in the journal meanwhile, and /readyz answers 503 until a writer runs again",
            extra={"writer_pid": pid, "exit_code": exit_code, "pending_bytes": self._writer.pending_bytes},
        )
        self._restart = self._loop.call_later(delay, self._start_again)

    def _start_again(self) -> None:
        self._restart = None
        self._writer.start()
        self._watch()
        log.warning(
            "the ledger writer was restarted; it resumes where the last one stopped",
            extra={"writer_pid": self._writer.pid, "pending_bytes": self._writer.pending_bytes},
        )
