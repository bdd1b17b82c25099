"""The parent's handle on the ledger writer process (writer_process.py), which moves
journal lines into the database off the request path.

A process, not a thread: parsing rows and binding them to SQL is CPU work that,
on a thread, competes with the event loop for the GIL. Measured in bench/ as a
thread it cost 15% of throughput at concurrency 64; as a process about 5%, and
the request path keeps only its two write(2) calls.

Stopping is the parent's decision alone. The writer ignores SIGINT and SIGTERM, so
a signal sent to the whole process group (systemd, `timeout`, Ctrl-C) reaches only
the server, which drains its requests first and then closes the writer's stop
pipe; the writer applies what is journaled and exits. Nothing the two share takes
a lock: a writer killed mid-update (SIGKILL, the OOM killer) must not leave behind
a lock the parent then waits on forever. A writer that dies is restarted (keeper.py)
and resumes where the last one stopped: the journal is the truth.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

from .journal import Journal
from .writer_process import STOP_SIGNALS, Slot, run_writer

_spawn = multiprocessing.get_context("spawn")  # no fork of a process with threads and an event loop


class LedgerWriter:
    """The parent's handle on the writer process and the progress it shares."""

    def __init__(self, journal: Journal, url: str) -> None:
        self._journal = journal
        self._url = url
        self._progress = _spawn.RawArray("q", len(Slot))  # outlives each process: a restart resumes from it
        self._process: Any = None
        self._stop_sender: Connection | None = None
        self._wake_sender: Connection | None = None

    def start(self) -> None:
        """Start a writer process where the last one stopped (the first: at the beginning)."""
        seq, offset = self._journal.position(self.bytes_applied)
        receiver, self._stop_sender = _spawn.Pipe(duplex=False)
        wake_receiver, self._wake_sender = _spawn.Pipe(duplex=False)
        # A wake is a hint: it never blocks the event loop, whether the pipe is full or the writer gone.
        os.set_blocking(self._wake_sender.fileno(), False)
        self._process = _spawn.Process(
            target=run_writer,
            name="tollgate-ledger-writer",
            daemon=True,
            args=(str(self._journal.directory), self._journal.owner, self._url, os.getpid(), seq, offset),
            kwargs=dict(progress=self._progress, stop=receiver, wake=wake_receiver),
        )
        with _stop_signals_ignored_by_children():
            self._process.start()
        receiver.close()  # the writer holds the only reading end: it sees EOF when this process closes or dies
        wake_receiver.close()
        # Registered after multiprocessing's exit hook, so it runs before it: that hook would join the writer forever.
        atexit.unregister(self._kill)
        atexit.register(self._kill)

    def stop(self, timeout_s: float) -> bool:
        """Apply what is journaled, then stop. True when nothing was left behind."""
        atexit.unregister(self._kill)
        if self._stop_sender is not None:
            self._stop_sender.close()
        if self._wake_sender is not None:
            self._wake_sender.close()
            self._wake_sender = None
        if self._process is None:
            return False
        self._process.join(timeout_s)
        if self._process.is_alive():  # the database is still away: the journal keeps the rows
            self._process.kill()  # it ignores SIGTERM; SIGKILL cannot be ignored, so this join is short
            self._process.join()
            return False
        return self.recovered and self.pending_bytes == 0

    def _kill(self) -> None:
        """The parent exits without having stopped the writer (start-up failed): the journal keeps the rows."""
        if self._process is not None and self._process.is_alive():
            self._process.kill()

    def wake(self) -> None:
        """A read is waiting: record a watermark now rather than at the next poll. A wake
        already pending (a full pipe) or a writer that is gone (its keeper restarts it)
        needs none."""
        if self._wake_sender is not None:
            with contextlib.suppress(BlockingIOError, BrokenPipeError, OSError):
                self._wake_sender.send_bytes(b"")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def sentinel(self) -> int:
        """A descriptor that becomes readable when the current writer process ends."""
        return self._process.sentinel

    def reap(self) -> int | None:
        """The exit code of a writer that ended (negative: the signal that killed it)."""
        self._process.join()
        return self._process.exitcode

    @property
    def bytes_applied(self) -> int:
        return self._progress[Slot.APPLIED]

    @property
    def rows_written(self) -> int:
        return self._progress[Slot.ROWS]

    @property
    def write_failures(self) -> int:
        return self._progress[Slot.FAILURES]

    @property
    def connected(self) -> bool:
        return bool(self._progress[Slot.CONNECTED])

    @property
    def recovered(self) -> bool:
        """The journals of dead processes are in."""
        return bool(self._progress[Slot.RECOVERED])

    @property
    def pending_bytes(self) -> int:
        return self._journal.bytes_appended - self.bytes_applied

    def wait_until_connected(self, timeout_s: float) -> bool:
        return _wait_for(lambda: self.connected, timeout_s)

    def wait_until_applied(self, timeout_s: float) -> bool:
        """Until every journaled row, this process's and any replayed ones, is in the database."""
        return _wait_for(lambda: self.recovered and not self.pending_bytes, timeout_s)


def _wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


@contextlib.contextmanager
def _stop_signals_ignored_by_children() -> Iterator[None]:
    """A child inherits ignored signals through exec, so the writer ignores SIGINT and
    SIGTERM from its first instruction, not only once its interpreter has started (a
    group's SIGTERM in between would kill it half-started). The signals are blocked
    meanwhile, so one meant for this process waits a moment instead of being lost."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread sets handlers; run_writer ignores them itself
        return
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    # Ignoring a signal discards it if it is pending: then this process is stopping anyway.
    stopping = signal.sigpending() & set(STOP_SIGNALS)
    handlers = {} if stopping else {stop: signal.signal(stop, signal.SIG_IGN) for stop in STOP_SIGNALS}
    try:
        yield
    finally:
        for stop, handler in handlers.items():
            signal.signal(stop, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
