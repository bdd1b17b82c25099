"""The parent's handle on the ledger writer process (writer_process.py), which moves
journal lines into the database off the request path.

A process, not a thread: parsing rows and binding them to SQL is CPU work that,
on a thread, competes with the event loop for the GIL. Measured in bench/ as a
thread it cost 15% of throughput at concurrency 64; as a process about 5%, and
the request path keeps only its two write(2) calls. A plain child process
(subprocess), not multiprocessing's: a `spawn` start brings multiprocessing's
resource tracker, one more Python process (~13 MB) for nothing the writer uses.
What the two share is a few integers in a memory-mapped file and three pipes.

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
import json
import mmap
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .journal import Journal
from .writer_process import STOP_SIGNALS, Slot

# Where the `proxy` package lives: the child finds it there whatever sys.path the parent was given.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_CHILD = "from proxy.ledger.writer_process import main; main()"


class LedgerWriter:
    """The parent's handle on the writer process and the progress it shares."""

    def __init__(self, journal: Journal, url: str) -> None:
        self._journal = journal
        self._url = url
        self._early = _take_early()  # a process started already, if `start_early` was called
        # Outlives each process, so a restart resumes from it: an unlinked file, mapped by both.
        self._progress_fd = self._early.progress_fd if self._early is not None else _progress_file()
        self._progress = memoryview(mmap.mmap(self._progress_fd, 8 * len(Slot))).cast("q")
        self._process: subprocess.Popen[bytes] | None = None
        self._stop_fd: int | None = None  # closing it asks the writer to finish and stop
        self._wake_fd: int | None = None
        self._ended_fd: int | None = None  # readable once the writer has ended: it held the other end

    def start(self) -> None:
        """Start a writer process where the last one stopped (the first: at the beginning)."""
        seq, offset = self._journal.position(self.bytes_applied)
        spawned, self._early = self._early or _spawn(self._progress_fd), None
        settings = {
            "directory": str(self._journal.directory),
            "owner": self._journal.owner,
            "url": self._url,  # on stdin, never in argv: a database URL may hold a password
            "parent": os.getpid(),
            "seq": seq,
            "offset": offset,
            "progress": self._progress_fd,
            "stop": spawned.stop_receiver,  # the numbers of the writer's own ends
            "wake": spawned.wake_receiver,
        }
        assert spawned.process.stdin is not None
        try:
            with spawned.process.stdin:
                spawned.process.stdin.write(json.dumps(settings).encode())
        except BrokenPipeError:  # the early process died meanwhile: its keeper restarts it, loudly
            pass
        self._close_fds()
        self._process = spawned.process
        self._stop_fd, self._wake_fd, self._ended_fd = spawned.stop_sender, spawned.wake_sender, spawned.ended_receiver
        atexit.unregister(self._kill)
        atexit.register(self._kill)

    def stop(self, timeout_s: float) -> bool:
        """Apply what is journaled, then stop. True when nothing was left behind."""
        atexit.unregister(self._kill)
        for fd in (self._stop_fd, self._wake_fd):
            if fd is not None:
                os.close(fd)
        self._stop_fd = self._wake_fd = None
        if self._process is None:
            return False
        try:
            self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:  # the database is still away: the journal keeps the rows
            self._process.kill()  # it ignores SIGTERM; SIGKILL cannot be ignored, so this wait is short
            self._process.wait()
            return False
        finally:
            self._close_fds()
        return self.recovered and self.pending_bytes == 0

    def _kill(self) -> None:
        """The parent exits without having stopped the writer (start-up failed): the journal keeps the rows."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()

    def _close_fds(self) -> None:
        for fd in (self._stop_fd, self._wake_fd, self._ended_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._stop_fd = self._wake_fd = self._ended_fd = None

    def wake(self) -> None:
        """A read is waiting: record a watermark now rather than at the next poll. A wake
        already pending (a full pipe) or a writer that is gone (its keeper restarts it)
        needs none."""
        if self._wake_fd is not None:
            with contextlib.suppress(BlockingIOError, BrokenPipeError, OSError):
                os.write(self._wake_fd, b"w")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def sentinel(self) -> int:
        """A descriptor that becomes readable when the current writer process ends."""
        assert self._ended_fd is not None
        return self._ended_fd

    def reap(self) -> int | None:
        """The exit code of a writer that ended (negative: the signal that killed it)."""
        assert self._process is not None
        return self._process.wait()

    def kill(self) -> None:
        """SIGKILL the writer, as the OOM killer would (tests)."""
        assert self._process is not None
        self._process.kill()
        self._process.wait(5)

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


@dataclass(frozen=True, slots=True)
class _Spawned:
    """A writer process, started and waiting on stdin for its settings, and the parent's
    ends of what the two share."""

    process: subprocess.Popen[bytes]
    progress_fd: int
    stop_receiver: int  # the writer's ends, by number (the same in both processes)
    wake_receiver: int
    stop_sender: int  # the parent's
    wake_sender: int
    ended_receiver: int

    def close_parent_ends(self) -> None:
        """No ledger will use this process: the parent lets go of all it shares with it."""
        for fd in (self.progress_fd, self.stop_sender, self.wake_sender, self.ended_receiver):
            os.close(fd)


def _progress_file() -> int:
    """An unlinked file of the progress slots, for the parent and each writer to map."""
    descriptor, unlinked = tempfile.mkstemp(prefix="tollgate-ledger-progress-")
    os.unlink(unlinked)
    os.ftruncate(descriptor, 8 * len(Slot))
    return descriptor


def _spawn(progress_fd: int) -> _Spawned:
    stop_receiver, stop_sender = os.pipe()
    wake_receiver, wake_sender = os.pipe()
    ended_receiver, ended_sender = os.pipe()
    # A wake is a hint: it never blocks the event loop, whether the pipe is full or the writer gone.
    os.set_blocking(wake_sender, False)
    path = os.environ.get("PYTHONPATH")
    environment = {**os.environ, "PYTHONPATH": _PACKAGE_ROOT + (os.pathsep + path if path else "")}
    with _stop_signals_ignored_by_children():
        process = subprocess.Popen(
            [sys.executable, "-c", _CHILD],
            stdin=subprocess.PIPE,
            env=environment,
            pass_fds=(progress_fd, stop_receiver, wake_receiver, ended_sender),
        )
    for child_end in (stop_receiver, wake_receiver, ended_sender):
        os.close(child_end)  # the writer holds the only ones: each side sees EOF when the other ends
    return _Spawned(process, progress_fd, stop_receiver, wake_receiver, stop_sender, wake_sender, ended_receiver)


# The writer process `start_early` started, until a LedgerWriter takes it.
_early: _Spawned | None = None


def start_early() -> None:
    """Start the writer process of the ledger this process is about to open, before the
    proxy knows where the ledger is. The writer's interpreter and modules load (~50 ms
    here) while the proxy loads its own, then it waits for its settings on stdin, which
    the first LedgerWriter sends. Started with the ledger instead, at the end of
    start-up, it was still loading when the first requests came: a budget's first read
    of the ledger waited for it (~50 ms). `tollgate serve` calls this first thing."""
    global _early
    if _early is None:
        _early = _spawn(_progress_file())


def discard_early() -> None:
    """No ledger will take the early process (the ledger is off, the workers open their
    own, start-up failed): it reads an empty stdin and exits, having done nothing."""
    spawned = _take_early()
    if spawned is None:
        return
    assert spawned.process.stdin is not None
    spawned.process.stdin.close()
    spawned.close_parent_ends()
    threading.Thread(target=spawned.process.wait, name="tollgate-writer-reaper", daemon=True).start()


def _take_early() -> _Spawned | None:
    """The early process, once: None if there is none, or it has died (a new one is started)."""
    global _early
    spawned, _early = _early, None
    if spawned is not None and spawned.process.poll() is not None:
        spawned.close_parent_ends()
        return None
    return spawned


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
