"""The ledger writer: a background thread that moves journal lines into the
database in batches. It first replays the journals of processes that died, then
follows this process's own journal. When the database is down it waits and
retries the same lines; nothing advances until a batch is committed."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from .journal import Journal, Orphan, orphans
from .row import Charge, utc_now
from .sql import SqlLedger

log = logging.getLogger("tollgate.ledger")

_BATCH_BYTES = 4 * 1024 * 1024
# The writer wakes on a timer, not on each append: waking it per row would hand it
# the GIL between every two requests and slow the event loop (bench/README.md).
_POLL_S = 0.1
_SYNC_EVERY_S = 1.0  # fsync is slow and makes appends wait; once a second bounds a machine crash's loss
_RETRY_WAIT_S = (0.2, 0.5, 1.0, 2.0, 5.0)


class LedgerWriter:
    def __init__(self, journal: Journal, ledger: SqlLedger) -> None:
        self._journal = journal
        self._ledger = ledger
        self._segment = journal.current
        self._offset = 0
        self._connection: Any = None
        self._synced_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tollgate-ledger-writer", daemon=True)
        self.bytes_applied = 0
        self.rows_written = 0
        self.write_failures = 0
        self.connected = threading.Event()
        self.recovered = threading.Event()  # the journals of dead processes are in

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float) -> bool:
        """Apply what is journaled, then stop. True when nothing was left behind."""
        self._stop.set()
        self._thread.join(timeout_s)
        drained = not self._thread.is_alive() and self.recovered.is_set() and self.pending_bytes == 0
        if self._connection is not None and not self._thread.is_alive():
            self._connection.close()
        return drained

    @property
    def pending_bytes(self) -> int:
        return self._journal.bytes_appended - self.bytes_applied

    def wait_until_applied(self, timeout_s: float) -> bool:
        """Until every journaled row, this process's and any replayed ones, is in the database."""
        deadline = time.monotonic() + timeout_s
        if not self.recovered.wait(timeout_s):
            return False
        while self.pending_bytes and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.pending_bytes == 0

    # --- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        self._with_retry(lambda connection: self._ledger.create_schema(connection))
        self.connected.set()
        for orphan in orphans(self._journal.directory, own=self._journal.owner):
            self._replay(orphan)
        self.recovered.set()
        while True:
            stopping = self._stop.is_set()
            try:
                if self._apply_next():
                    continue
            except Exception:  # a bug here must not silently end the ledger: log it and keep going
                log.exception("ledger writer failed; retrying")
                time.sleep(1)
            if stopping:
                return
            self._stop.wait(_POLL_S)

    def _apply_next(self) -> bool:
        """Apply the next batch of whole lines; False when there was none."""
        newer_exists = self._journal.current.seq > self._segment.seq  # checked before reading: see Journal._rotate
        with self._segment.path.open("rb") as file:
            file.seek(self._offset)
            data = file.read(_BATCH_BYTES)
        end = data.rfind(b"\n") + 1
        if end == 0:
            if newer_exists:  # this segment is complete and applied: on to the next
                self._segment.path.unlink(missing_ok=True)
                self._segment = self._journal.segment(self._segment.seq + 1)
                self._offset = 0
                return True
            return False
        if not self._with_retry(lambda connection: self._apply(connection, data[:end]), give_up_on_stop=True):
            return False
        self._offset += end
        self.bytes_applied += end
        if time.monotonic() - self._synced_at >= _SYNC_EVERY_S:
            self._journal.sync()
            self._synced_at = time.monotonic()
        return True

    def _apply(self, connection: Any, lines: bytes) -> None:
        latest: dict[str, dict[str, Any]] = {}
        for line in lines.splitlines():
            record = orjson.loads(line)
            latest[record["request_id"]] = record  # a later snapshot of the same request wins
        self._ledger.upsert(connection, list(latest.values()))
        self.rows_written += len(latest)

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
                self.write_failures += 1
                if attempt == 0 or attempt % 20 == 0:
                    log.warning(
                        "ledger database write failed; the rows stay in the journal and will be retried",
                        extra={"error": f"{type(error).__name__}: {error}"[:300], "failures": attempt + 1},
                    )
                self._drop_connection()
                if give_up_on_stop and self._stop.is_set():
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
