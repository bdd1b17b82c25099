"""The ledger writer process: it moves journal lines into the database in batches.
It first replays the journals of processes that died, then follows its parent's
journal from where it is told to resume. When the database is down it waits and
retries the same lines; nothing advances until a batch is committed.

It ignores SIGINT and SIGTERM (see writer.py) and stops when its parent closes the
stop pipe, after applying what is journaled, or at once when its parent is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterable, Iterator
from enum import IntEnum
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from .journal import Orphan, Segment, orphans, segments
from .row import Charge, LedgerRow, utc_now
from .sql import SqlLedger

log = logging.getLogger("tollgate.ledger")

_BATCH_BYTES = 1024 * 1024  # a backlog is applied in steps, so the writer stays small
_POLL_S = 0.1  # wake on a timer: the journal is a file, and the parent never waits for the writer
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


def run_writer(
    directory: str, owner: str, url: str, parent: int, seq: int, offset: int, *, progress: Any, stop: Connection
) -> None:
    """The child process's entry point."""
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, signal.SIG_IGN)
    from ..logs import configure_logging

    configure_logging()
    # Background work: on a busy machine the CPU goes to serving requests first.
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    resume_at = Segment(Path(directory) / f"{owner}.{seq:06d}.jsonl", seq)
    _WriterLoop(Path(directory), owner, SqlLedger(url), parent, resume_at, offset, progress=progress, stop=stop).run()


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
        stop: Connection,
    ) -> None:
        self._directory, self._owner, self._ledger, self._parent = directory, owner, ledger, parent
        self._segment, self._offset = segment, offset  # where to resume in the parent's journal
        self._progress, self._stop = progress, stop
        self._connection: Any = None
        self._synced_at = 0.0

    def run(self) -> None:
        self._with_retry(lambda connection: self._ledger.create_schema(connection))
        self._progress[Slot.CONNECTED] = 1
        for orphan in orphans(self._directory, own=self._owner):
            self._replay(orphan)
        self._progress[Slot.RECOVERED] = 1
        while self._parent_alive():
            stopping = self._stop_requested()
            try:
                if self._apply_next():
                    continue
            except Exception:  # a bug here must not silently end the ledger: log it and keep going
                log.exception("ledger writer failed; retrying")
                time.sleep(1)
            if stopping:
                break
            self._stop.poll(_POLL_S)
        if self._connection is not None:
            self._connection.close()

    def _stop_requested(self) -> bool:
        """The parent closed the stop pipe (or died): a readable end that holds no more data."""
        return self._stop.poll(0)

    def _parent_alive(self) -> bool:
        # A killed parent leaves an orphan journal, which the next process to start replays.
        return os.getppid() == self._parent

    def _apply_next(self) -> bool:
        """Apply the next batch of whole lines; False when there was none."""
        # Checked before reading: a newer segment exists only after the last write to this one.
        newer = [segment for segment in segments(self._directory, self._owner) if segment.seq > self._segment.seq]
        try:
            with self._segment.path.open("rb") as file:
                file.seek(self._offset)
                data = file.read(_BATCH_BYTES)
        except FileNotFoundError:
            data = b""
        end = data.rfind(b"\n") + 1
        if end == 0:
            if newer:  # this segment is complete and applied: on to the next
                self._segment.path.unlink(missing_ok=True)
                self._segment, self._offset = newer[0], 0
                return True
            return False
        if not self._with_retry(lambda connection: self._apply(connection, data[:end]), give_up_on_stop=True):
            return False
        self._offset += end
        self._progress[Slot.APPLIED] += end
        self._sync()
        return True

    def _sync(self) -> None:
        if time.monotonic() - self._synced_at < _SYNC_EVERY_S:
            return
        with contextlib.suppress(OSError), self._segment.path.open("rb") as file:
            os.fsync(file.fileno())  # any descriptor of the file flushes the file
        self._synced_at = time.monotonic()

    def _apply(self, connection: Any, lines: bytes) -> None:
        latest: dict[str, dict[str, Any]] = {}
        for line in lines.splitlines():
            record = orjson.loads(line)
            latest[record["request_id"]] = record  # a later snapshot of the same request wins
        self._ledger.upsert(connection, list(latest.values()))
        self._progress[Slot.ROWS] += len(latest)

    def _replay(self, orphan: Orphan) -> None:
        """Another process died: its journaled rows go in, its unfinished rows are abandoned."""
        for lines in _batches(orphan.lines(), 2000):
            self._with_retry(lambda connection, lines=lines: self._apply(connection, lines))
        abandoned = self._with_retry(lambda connection: self._abandon(connection, orphan.owner))
        log.warning(
            "replayed the journal of a process that stopped without closing its ledger",
            extra={"journal_owner": orphan.owner, "abandoned_rows": abandoned},
        )
        orphan.remove()

    def _abandon(self, connection: Any, owner: str) -> int:
        rows = self._ledger.started_by(connection, owner)
        for row in rows:
            _abandon(row)
        self._ledger.upsert(connection, [row.record() for row in rows])
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


def _abandon(row: LedgerRow) -> None:
    row.status = "abandoned"
    row.finished_at = utc_now()
    row.error_type = "abandoned"
    # The upstream may have billed: the estimate stands in for the cost.
    row.cost_basis = "estimate" if row.estimated_cost_nanousd is not None else "unpriced"
    row.cost_nanousd = row.estimated_cost_nanousd
    if row.provider and row.estimated_cost_nanousd is not None:
        row.charges = [
            Charge(
                row.provider,
                row.billing_owner or "",
                row.price_table,
                row.price_source,
                row.estimated_cost_nanousd,
                "estimate",
            )
        ]


def _batches(lines: Iterable[bytes], size: int) -> Iterator[bytes]:
    batch: list[bytes] = []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield b"".join(batch)
            batch = []
    if batch:
        yield b"".join(batch)
