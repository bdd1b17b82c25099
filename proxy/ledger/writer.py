"""The ledger writer: a child process that moves journal lines into the database
in batches. It first replays the journals of processes that died, then follows
its parent's journal. When the database is down it waits and retries the same
lines; nothing advances until a batch is committed. With each batch, and when idle
at every heartbeat or when a read asks, it records how far it has caught up, which
reads wait for (barrier.py).

A process, not a thread: parsing rows and binding them to SQL is CPU work that,
on a thread, competes with the event loop for the GIL. Measured in bench/ as a
thread it cost 15% of throughput at concurrency 64; as a process about 5%, and
the request path keeps only its two write(2) calls.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import orjson

from .barrier import HEARTBEAT_S, Watermarks
from .journal import Journal, Orphan, Segment, orphans, segments
from .sql import SqlLedger

log = logging.getLogger("tollgate.ledger")

_BATCH_BYTES = 1024 * 1024  # a backlog is applied in steps, so the writer stays small
_POLL_S = 0.1  # wake on a timer (the journal is a file, and requests never wait for the writer), or for a read
_SYNC_EVERY_S = 1.0  # fsync the journal once a second: that bounds what a machine crash can lose
_RETRY_WAIT_S = (0.2, 0.5, 1.0, 2.0, 5.0)
_spawn = multiprocessing.get_context("spawn")  # no fork of a process with threads and an event loop


class LedgerWriter:
    """The parent's handle on the writer process and the progress it shares."""

    def __init__(self, journal: Journal, url: str) -> None:
        self._journal = journal
        self._applied: Synchronized[int] = _spawn.Value("q", 0)
        self._rows: Synchronized[int] = _spawn.Value("q", 0)
        self._failures: Synchronized[int] = _spawn.Value("q", 0)
        self._stop = _spawn.Event()
        self._wake = _spawn.Event()  # a read in this process is waiting for a watermark
        self.connected = _spawn.Event()  # registered in the database: reads wait for this writer
        self.recovered = _spawn.Event()  # the journals of dead processes are in
        shared = dict(
            applied=self._applied,
            rows=self._rows,
            failures=self._failures,
            stop=self._stop,
            wake=self._wake,
            connected=self.connected,
            recovered=self.recovered,
        )
        self._process = _spawn.Process(
            target=run_writer,
            name="tollgate-ledger-writer",
            daemon=True,
            args=(str(journal.directory), journal.owner, url, os.getpid()),
            kwargs=shared,
        )

    def start(self) -> None:
        self._process.start()

    def stop(self, timeout_s: float) -> bool:
        """Apply what is journaled, then stop. True when nothing was left behind."""
        self._stop.set()
        self._wake.set()
        self._process.join(timeout_s)
        if self._process.is_alive():  # the database is still away: the journal keeps the rows
            self._process.terminate()
            self._process.join(5)
            return False
        return self.recovered.is_set() and self.pending_bytes == 0

    def wake(self) -> None:
        """A read is waiting: record a watermark now rather than at the next poll."""
        self._wake.set()

    @property
    def bytes_applied(self) -> int:
        return self._applied.value

    @property
    def rows_written(self) -> int:
        return self._rows.value

    @property
    def write_failures(self) -> int:
        return self._failures.value

    @property
    def pending_bytes(self) -> int:
        return self._journal.bytes_appended - self._applied.value

    def wait_until_applied(self, timeout_s: float) -> bool:
        """Until every journaled row, this process's and any replayed ones, is in the database."""
        deadline = time.monotonic() + timeout_s
        if not self.recovered.wait(timeout_s):
            return False
        while self.pending_bytes and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.pending_bytes == 0


def run_writer(directory: str, owner: str, url: str, parent: int, **shared: Any) -> None:
    """The child process's entry point."""
    from ..logs import configure_logging

    configure_logging()
    # Background work: on a busy machine the CPU goes to serving requests first.
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    _WriterLoop(Path(directory), owner, SqlLedger(url), parent, **shared).run()


class _WriterLoop:
    def __init__(
        self,
        directory: Path,
        owner: str,
        ledger: SqlLedger,
        parent: int,
        *,
        applied: Synchronized[int],
        rows: Synchronized[int],
        failures: Synchronized[int],
        stop: Any,
        wake: Any,
        connected: Any,
        recovered: Any,
    ) -> None:
        self._directory, self._owner, self._ledger, self._parent = directory, owner, ledger, parent
        self._applied, self._rows, self._failures = applied, rows, failures
        self._stop, self._wake, self._connected, self._recovered = stop, wake, connected, recovered
        self._watermarks = Watermarks(ledger)
        self._segment = Segment(directory / f"{owner}.{0:06d}.jsonl", 0)
        self._offset = 0
        self._connection: Any = None
        self._synced_at = 0.0
        self._marked_at = 0.0  # monotonic time of the last heartbeat
        self._caught_up_us = -1  # the last watermark recorded, on the database's clock

    def run(self) -> None:
        self._with_retry(self._register)
        self._connected.set()
        for orphan in orphans(self._directory, own=self._owner):
            self._replay(orphan)
        self._recovered.set()
        while self._parent_alive():
            stopping = self._stop.is_set()
            if asked := self._wake.is_set():  # cleared only once seen, so that no wake is lost
                self._wake.clear()
            try:
                if self._apply_next(asked=asked, stopping=stopping):
                    continue
            except Exception:  # a bug here must not silently end the ledger: log it and keep going
                log.exception("ledger writer failed; retrying")
                time.sleep(1)
            if stopping:
                break
            self._wake.wait(_POLL_S)
        self._leave()

    def _register(self, connection: Any) -> None:
        """Tables first; then this writer's row, not caught up yet: reads now wait for it."""
        self._ledger.create_schema(connection)
        heartbeat = self._watermarks.clock_us(connection)
        self._watermarks.mark(connection, self._owner, caught_up_us=None, heartbeat_us=heartbeat)

    def _leave(self) -> None:
        """Stopping: reads stop waiting for this writer. One try: if the database is away,
        the row goes stale, and the journal left behind is replayed at the next start."""
        if self._connection is None:
            return
        with contextlib.suppress(Exception):
            self._watermarks.forget(self._connection, self._owner)
            self._connection.commit()
        self._drop_connection()

    def _parent_alive(self) -> bool:
        # A killed parent leaves an orphan journal, which the next process to start replays.
        return os.getppid() == self._parent

    def _apply_next(self, *, asked: bool, stopping: bool) -> bool:
        """Apply the next batch of whole lines and record how far that brings the
        database; False when there was nothing to do (a writer stopping owes no mark)."""
        if not self._unread() and (stopping or not self._watermark_wanted(asked)):
            return False
        outcome = self._with_retry(self._advance, give_up_on_stop=True)
        if outcome is False:
            return False
        end, newer, caught_up_us = outcome
        self._marked_at = time.monotonic()
        if caught_up_us is not None:
            self._caught_up_us = caught_up_us
        if end:
            self._offset += end
            with self._applied.get_lock():
                self._applied.value += end
            self._sync()
            return True
        if newer:  # this segment is complete and applied: on to the next
            self._segment.path.unlink(missing_ok=True)
            self._segment, self._offset = newer[0], 0
            return True
        return False

    def _advance(self, connection: Any) -> tuple[int, list[Segment], int | None]:
        """One transaction: the batch from the journal and the watermark it earns. The
        clock is read first: every line written before it is in what is read after."""
        now_us = self._watermarks.clock_us(connection)
        # Listed before reading: a newer segment exists only after the last write to this one.
        newer = [segment for segment in segments(self._directory, self._owner) if segment.seq > self._segment.seq]
        try:
            with self._segment.path.open("rb") as file:
                file.seek(self._offset)
                data = file.read(_BATCH_BYTES)
        except FileNotFoundError:
            data = b""
        end = data.rfind(b"\n") + 1
        if end:
            self._apply(connection, data[:end])
        else:
            self._watermarks.without_flush(connection)
        at_end = not newer and len(data) < _BATCH_BYTES  # what is left is a line still being written
        caught_up_us = now_us if at_end else None
        self._watermarks.mark(connection, self._owner, caught_up_us=caught_up_us, heartbeat_us=now_us)
        return end, newer, caught_up_us

    def _unread(self) -> bool:
        """Anything journaled past what is applied (a cheap look, before any transaction)."""
        try:
            if self._segment.path.stat().st_size > self._offset:
                return True
        except FileNotFoundError:
            pass
        return any(segment.seq > self._segment.seq for segment in segments(self._directory, self._owner))

    def _watermark_wanted(self, asked: bool) -> bool:
        """Idle, yet a watermark is due: a read here asked, a read elsewhere left a time
        newer than ours in the database, or it is time for a heartbeat."""
        if asked or time.monotonic() - self._marked_at >= HEARTBEAT_S:
            return True
        try:
            if self._connection is None:
                self._connection = self._ledger.open()
            asked_us = self._watermarks.asked_us(self._connection)
            self._connection.commit()
        except Exception:  # the heartbeat's own retries deal with an absent database
            self._drop_connection()
            return False
        return asked_us >= self._caught_up_us

    def _sync(self) -> None:
        if time.monotonic() - self._synced_at < _SYNC_EVERY_S:
            return
        with contextlib.suppress(OSError), self._segment.path.open("rb") as file:
            os.fsync(file.fileno())  # any descriptor of the file flushes the file
        self._synced_at = time.monotonic()

    def _apply(self, connection: Any, lines: bytes, *, beat: bool = False) -> None:
        """`beat`: also say this writer is alive (a long replay must not look like a dead writer)."""
        latest: dict[str, dict[str, Any]] = {}
        for line in lines.splitlines():
            record = orjson.loads(line)
            latest[record["request_id"]] = record  # a later snapshot of the same request wins
        self._ledger.upsert(connection, list(latest.values()))
        with self._rows.get_lock():
            self._rows.value += len(latest)
        if beat:
            heartbeat = self._watermarks.clock_us(connection)
            self._watermarks.mark(connection, self._owner, caught_up_us=None, heartbeat_us=heartbeat)

    def _replay(self, orphan: Orphan) -> None:
        """Another process died: its journaled rows go in, its unfinished rows are abandoned."""
        for lines in _batches(orphan.lines(), 2000):
            self._with_retry(lambda connection, lines=lines: self._apply(connection, lines, beat=True))
        abandoned = self._with_retry(lambda connection: self._abandon(connection, orphan.owner))
        log.warning(
            "replayed the journal of a process that stopped without closing its ledger",
            extra={"journal_owner": orphan.owner, "abandoned_rows": abandoned},
        )
        orphan.remove()

    def _abandon(self, connection: Any, owner: str) -> int:
        rows = self._ledger.started_by(connection, owner)
        for row in rows:
            row.abandon()
        self._ledger.upsert(connection, [row.record() for row in rows])
        self._watermarks.forget(connection, owner)  # reads need not wait for the dead writer any more
        return len(rows)

    def _with_retry(self, work: Any, *, give_up_on_stop: bool = False) -> Any:
        """Run `work` in a transaction, reconnecting and retrying while the database is away."""
        attempt = 0
        while True:
            try:
                if self._connection is None:
                    self._connection = self._ledger.open()
                result = work(self._connection)
                self._connection.commit()
                return result if result is not None else True
            except Exception as error:
                with self._failures.get_lock():
                    self._failures.value += 1
                if attempt == 0 or attempt % 20 == 0:
                    log.warning(
                        "ledger database write failed; the rows stay in the journal and will be retried",
                        extra={"error": f"{type(error).__name__}: {error}"[:300], "failures": attempt + 1},
                    )
                self._drop_connection()
                if (give_up_on_stop and self._stop.is_set()) or not self._parent_alive():
                    return False  # shutting down: the journal keeps the rows for the next start
                time.sleep(_RETRY_WAIT_S[min(attempt, len(_RETRY_WAIT_S) - 1)])
                attempt += 1

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # it is being dropped because it broke
                self._connection.close()
            self._connection = None


def _batches(lines: Iterable[bytes], size: int) -> Iterator[bytes]:
    batch: list[bytes] = []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield b"".join(batch)
            batch = []
    if batch:
        yield b"".join(batch)
