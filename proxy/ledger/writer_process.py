"""The ledger writer process: it moves journal lines into the database in batches.
It first replays the journals of processes that died, then follows its parent's
journal from where it is told to resume. When the database is down it waits and
retries the same lines; nothing advances until a batch is committed. With each
batch, and when idle at every heartbeat or when a read asks, it records how far it
has caught up, which reads wait for (barrier.py).

It ignores SIGINT and SIGTERM (see writer.py) and stops when its parent closes the
stop pipe, after applying what is journaled, or at once when its parent is gone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import select
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from enum import IntEnum
from pathlib import Path
from typing import Any

import orjson

from .barrier import HEARTBEAT_S, Watermarks
from .journal import Orphan, Segment, orphans, segments
from .row import LedgerRow
from .sql import SqlLedger

log = logging.getLogger("tollgate.ledger")

_BATCH_BYTES = 256 * 1024  # a backlog is applied in steps, so the writer stays small
_POLL_S = 0.1  # wake on a timer (the journal is a file, and requests never wait for the writer), or for a read
_SYNC_EVERY_S = 1.0  # fsync the journal once a second: that bounds what a machine crash can lose
_RETRY_WAIT_S = (0.2, 0.5, 1.0, 2.0, 5.0)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Slot(IntEnum):
    """The progress the writer shares with its parent: plain integers, each written by
    the writer alone, so neither side ever takes a lock the other could die holding."""

    APPLIED = 0  # journal bytes committed to the database
    ROWS = 1
    FAILURES = 2
    CONNECTED = 3  # 1 once the schema exists
    RECOVERED = 4  # 1 once the journals of dead processes are in


def main() -> None:
    """The child process's entry point (writer.py starts it): its settings come on stdin,
    the descriptors it shares with its parent by number."""
    raw = sys.stdin.buffer.read()
    if not raw:  # started early for a ledger that was never opened (writer.py), or the parent is gone
        return
    settings = json.loads(raw)
    progress_fd = settings.pop("progress")
    progress = memoryview(mmap.mmap(progress_fd, 8 * len(Slot))).cast("q")
    os.set_blocking(settings["wake"], False)
    run_writer(**settings, progress=progress)


def run_writer(
    directory: str,
    owner: str,
    url: str,
    parent: int,
    seq: int,
    offset: int,
    *,
    progress: Any,
    stop: int,
    wake: int,
) -> None:
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, signal.SIG_IGN)
    from ..telemetry.logs import configure_logging

    configure_logging()
    # Background work: on a busy machine the CPU goes to serving requests first.
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    resume_at = Segment(Path(directory) / f"{owner}.{seq:06d}.jsonl", seq)
    loop = _WriterLoop(Path(directory), owner, SqlLedger(url), parent, resume_at, offset, progress=progress)
    loop.run(stop=stop, wake=wake)


class _WriterLoop:
    def __init__(
        self,
        directory: Path,
        owner: str,
        ledger: SqlLedger,
        parent: int,
        segment: Segment,
        offset: int,
        *,
        progress: Any,
    ) -> None:
        self._directory, self._owner, self._ledger, self._parent = directory, owner, ledger, parent
        self._segment, self._offset = segment, offset  # where to resume in the parent's journal
        self._progress = progress
        self._stop: int | None = None  # the stop pipe: readable (at EOF) once the parent asks
        self._watermarks = Watermarks(ledger)
        self._connection: Any = None
        self._synced_at = 0.0
        self._marked_at = 0.0  # monotonic time of the last heartbeat
        self._caught_up_us = -1  # the last watermark recorded, on the database's clock

    def run(self, *, stop: int, wake: int) -> None:
        self._stop = stop
        self._with_retry(self._register)
        self._progress[Slot.CONNECTED] = 1
        for orphan in orphans(self._directory, own=self._owner):
            self._replay(orphan)
        self._progress[Slot.RECOVERED] = 1
        while self._parent_alive():
            stopping = self._stop_requested()
            asked = _drained(wake)  # taken only once seen, so that no wake is lost
            try:
                if self._apply_next(asked=asked, stopping=stopping):
                    continue
            except Exception:  # a bug here must not silently end the ledger: log it and keep going
                log.exception("ledger writer failed; retrying")
                time.sleep(1)
            if stopping:
                break
            select.select([stop, wake], [], [], _POLL_S)
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

    def _stop_requested(self) -> bool:
        """The parent closed the stop pipe (or died): a readable end that holds no more data."""
        return self._stop is not None and bool(select.select([self._stop], [], [], 0)[0])

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
            self._progress[Slot.APPLIED] += end
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
        latest = _latest_snapshots(lines)
        self._ledger.upsert(connection, list(latest.values()))
        self._progress[Slot.ROWS] += len(latest)
        if beat:
            self._beat(connection)

    def _beat(self, connection: Any) -> None:
        heartbeat = self._watermarks.clock_us(connection)
        self._watermarks.mark(connection, self._owner, caught_up_us=None, heartbeat_us=heartbeat)

    def _replay(self, orphan: Orphan) -> None:
        """Another process died: its journaled rows go in, its unfinished rows are abandoned."""
        last = b""
        for lines in _batches(orphan.lines(), 2000):
            if last:
                self._with_retry(lambda connection, lines=last: self._apply(connection, lines, beat=True))
            last = lines
        abandoned = self._with_retry(lambda connection: self._finish_replay(connection, last, orphan.owner))
        log.warning(
            "replayed the journal of a process that stopped without closing its ledger",
            extra={"journal_owner": orphan.owner, "abandoned_rows": abandoned},
        )
        orphan.remove()

    def _finish_replay(self, connection: Any, lines: bytes, owner: str) -> int:
        """A dead process's last rows go in with its unfinished ones abandoned, in one upsert
        and one transaction: no read ever sees a row of it still `started` once its rows are in."""
        latest = _latest_snapshots(lines)
        self._progress[Slot.ROWS] += len(latest)
        unfinished = [LedgerRow.from_record(record) for record in latest.values() if record["status"] == "started"]
        unfinished += [row for row in self._ledger.started_by(connection, owner) if row.request_id not in latest]
        for row in unfinished:
            row.abandon()
            latest[row.request_id] = row.record()
        self._ledger.upsert(connection, list(latest.values()))
        self._beat(connection)
        self._watermarks.forget(connection, owner)  # reads need not wait for the dead writer any more
        return len(unfinished)

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
                self._progress[Slot.FAILURES] += 1
                if attempt == 0 or attempt % 20 == 0:
                    log.warning(
                        "ledger database write failed; the rows stay in the journal and will be retried",
                        extra={"error": f"{type(error).__name__}: {error}"[:300], "failures": attempt + 1},
                    )
                self._drop_connection()
                if (give_up_on_stop and self._stop_requested()) or not self._parent_alive():
                    return False  # shutting down: the journal keeps the rows for the next start
                time.sleep(_RETRY_WAIT_S[min(attempt, len(_RETRY_WAIT_S) - 1)])
                attempt += 1

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # it is being dropped because it broke
                self._connection.close()
            self._connection = None


def _drained(wake: int) -> bool:
    """Whether a read asked for a watermark since the last look; its wakes are taken."""
    asked = False
    with contextlib.suppress(OSError):  # BlockingIOError: nothing (more) there
        while os.read(wake, 4096):  # b"": the parent is gone
            asked = True
    return asked


_LEADS = b'{"request_id":"'  # how every journal line starts: the row's first field (row.py)


def _latest_snapshots(lines: bytes) -> dict[str, dict[str, Any]]:
    """Each request's last snapshot among journal lines: a later one of the same request
    wins. Only the winners are parsed (most requests have two lines in a batch, started
    and finished, and parsing was the writer's largest cost): the id is read off the
    line's start, and a line that does not start so is parsed to find it."""
    last: dict[str, bytes] = {}
    for line in lines.splitlines():
        end = line.find(b'"', len(_LEADS)) if line.startswith(_LEADS) else -1
        request_id = line[len(_LEADS) : end].decode() if end > 0 else orjson.loads(line)["request_id"]
        last[request_id] = line
    return {request_id: orjson.loads(line) for request_id, line in last.items()}


def _batches(lines: Iterable[bytes], size: int) -> Iterator[bytes]:
    batch: list[bytes] = []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield b"".join(batch)
            batch = []
    if batch:
        yield b"".join(batch)
