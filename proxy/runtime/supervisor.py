"""The parent of `tollgate serve --workers N`: uvicorn's supervisor of N worker
processes, with three changes an operator relies on.

- SIGHUP reloads in place: instead of replacing every worker (cold pools, a new
  ledger writer each), it goes to one ready worker, which validates the config
  once and brings the others along (proxy/reload/reloader.py).
- Stopping is bounded: each worker drains its requests and flushes its ledger,
  and one that takes longer than both bounds allow is killed rather than waited
  on forever (its journal stays and is replayed at the next start).
- A worker that dies while serving is replaced, and the log says so as an error.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from socket import socket

from uvicorn import Config
from uvicorn.supervisors import Multiprocess

from ..config.watch import ConfigWatch
from ..telemetry.logs import describe_exit

log = logging.getLogger("tollgate")


class Supervisor(Multiprocess):
    _watch: ConfigWatch | None = None

    def __init__(self, config: Config, sockets: list[socket], *, stop_timeout_s: float) -> None:
        super().__init__(config, sockets)
        self.stop_timeout_s = stop_timeout_s  # from the first stop signal to a killed straggler

    def watch(self, path: str, version: str) -> None:
        """`server.watch_config`: a changed file is handled as a SIGHUP (the queue is
        what uvicorn's own signal handler fills, read by its main loop)."""
        self._watch = ConfigWatch(path, version, lambda: self.signal_queue.append(signal.SIGHUP))

    def run(self) -> None:
        if self._watch is not None:
            self._watch.start()
        try:
            super().run()
        finally:
            if self._watch is not None:
                self._watch.stop()

    def handle_hup(self) -> None:
        for process in self.processes:
            if process.pid is not None and process.is_ready(timeout=1):
                log.info("SIGHUP: reloading the config", extra={"worker": process.pid})
                os.kill(process.pid, signal.SIGHUP)
                return
        log.error("SIGHUP: no worker is ready to reload the config; send it again once they are")

    def keep_subprocess_alive(self) -> None:
        serving = list(self.processes)
        super().keep_subprocess_alive()
        for process in serving:
            if process not in self.processes:
                log.error(
                    f"worker process {process.pid} ended while serving ({describe_exit(process.exitcode)}); "
                    "a new worker replaces it",
                    extra={"worker": process.pid, "exit_code": process.exitcode},
                )

    def join_all(self) -> None:
        deadline = time.monotonic() + self.stop_timeout_s
        for process in self.processes:
            process.process.join(max(0.0, deadline - time.monotonic()))
            if process.process.is_alive():
                log.error(
                    f"worker process {process.pid} did not stop within {self.stop_timeout_s:g} s; killing it. "
                    "Its ledger rows stay in the journal and go in at the next start",
                    extra={"worker": process.pid},
                )
                process.kill()
                process.process.join()
