"""The read barrier: a read of the ledger sees every request answered before it began.

A row is journaled before its response is sent, and reaches the database a moment
later through the writer process of the proxy process that answered (writer.py). So
a read first waits, briefly, until the writers have committed what was journaled
before it began. Proxy processes and replicas that share a database each have their
own writer and journal and meet only in the database, so the protocol lives there,
on one clock: PostgreSQL's `clock_timestamp()`, or, for SQLite, which one machine
serves, that machine's clock. Times are whole microseconds since the epoch.

- `ledger_writers` has a row per live writer, keyed by its journal's owner.
  `caught_up_us = T` says that every line journaled before T is committed: the writer
  reads T from the clock *before* it reads its journal to the end, and records T in
  the transaction that applies what it read. `heartbeat_us` says it is alive; it is
  refreshed with every batch, and every HEARTBEAT_S when there is nothing to apply.
- A read takes the time R, leaves it in `ledger_reads` (an idle writer looks there at
  each poll, and on seeing a read waiting records a watermark at once), wakes its own
  process's writer, and waits until every live writer's `caught_up_us` is past R.
  Past, not equal: a watermark read in the same tick of a coarse clock as R may
  precede a line written in that tick. The wait is bounded (`ledger.read_wait_s`);
  then the read gives up with LedgerBehind (a 503 with `retry-after` at the edge).
- A writer that stops cleanly deletes its row. A writer that died leaves it; it is not
  waited for once its heartbeat is STALE_S old, and replaying its journal (the next
  start on that journal directory does) deletes the row. Until that replay, the rows
  still in a dead process's journal are in no database, and no read can see them.

Only reads and the writer take part: the request path still journals a request with
two write(2) calls and nothing else.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # sql.py makes the barrier's tables with the others
    from .sql import SqlLedger

HEARTBEAT_S = 1.0  # an idle writer says it is alive this often
STALE_S = 10.0  # a writer silent this long is taken for dead, and not waited for
_ASK_BUSY_MS = 100  # SQLite: how long a read waits to leave its time for the writers
_FIRST_PAUSE_S, _LONGEST_PAUSE_S = 0.001, 0.01  # between looks at the writers' marks

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ledger_writers "
    "(owner TEXT PRIMARY KEY, caught_up_us BIGINT, heartbeat_us BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_reads (id INTEGER PRIMARY KEY, asked_us BIGINT NOT NULL)",
)


class LedgerBehind(Exception):
    """Writers that had not committed, within the wait, what was journaled before the read began."""

    def __init__(self, behind: list[str], waited_s: float) -> None:
        super().__init__(f"{len(behind)} ledger writer(s) behind after {waited_s:.1f}s")
        self.behind = behind
        self.waited_s = waited_s


@dataclass(frozen=True, slots=True)
class WriterMark:
    owner: str
    caught_up_us: int | None  # None until it has read its journal to the end once
    heartbeat_us: int


class Watermarks:
    """The barrier's two tables, in the ledger database's dialect."""

    def __init__(self, sql: SqlLedger) -> None:
        self.postgres = sql.postgres
        self._mark = "%s" if sql.postgres else "?"

    def present(self, connection: Any) -> bool:
        """Whether the ledger has the barrier's tables (one made by an older Tollgate has not)."""
        cursor = connection.cursor()
        if self.postgres:
            cursor.execute("SELECT to_regclass('ledger_writers') IS NOT NULL")
        else:
            cursor.execute("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'ledger_writers')")
        return bool(cursor.fetchone()[0])

    def clock_us(self, connection: Any) -> int:
        if not self.postgres:
            return time.time_ns() // 1000
        cursor = connection.cursor()
        cursor.execute("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint")
        return int(cursor.fetchone()[0])

    # --- the writer's side ---------------------------------------------------------------

    def mark(self, connection: Any, owner: str, *, caught_up_us: int | None, heartbeat_us: int) -> None:
        """Alive at `heartbeat_us`; and, unless None, caught up to `caught_up_us`."""
        m = self._mark
        connection.cursor().execute(
            f"INSERT INTO ledger_writers (owner, caught_up_us, heartbeat_us) VALUES ({m}, {m}, {m}) "
            "ON CONFLICT (owner) DO UPDATE SET heartbeat_us = excluded.heartbeat_us, "
            "caught_up_us = COALESCE(excluded.caught_up_us, ledger_writers.caught_up_us)",
            (owner, caught_up_us, heartbeat_us),
        )

    def without_flush(self, connection: Any) -> None:
        """PostgreSQL: commit this transaction without waiting for its WAL flush. Only for
        marks with no rows beside them: losing one in a crash loses nothing but a mark."""
        if self.postgres:
            connection.cursor().execute("SET LOCAL synchronous_commit TO off")

    def forget(self, connection: Any, owner: str) -> None:
        connection.cursor().execute(f"DELETE FROM ledger_writers WHERE owner = {self._mark}", (owner,))

    def asked_us(self, connection: Any) -> int:
        """The time of the latest read that asked the writers for a watermark (0: none yet)."""
        cursor = connection.cursor()
        cursor.execute("SELECT asked_us FROM ledger_reads WHERE id = 1")
        found = cursor.fetchone()
        return int(found[0]) if found else 0

    # --- the reader's side ---------------------------------------------------------------

    def ask(self, connection: Any, read_us: int) -> None:
        """Leave the read's time where idle writers look. Best effort: a writer that does
        not see it still records a watermark with its next heartbeat."""
        m = self._mark
        statement = (
            f"INSERT INTO ledger_reads (id, asked_us) VALUES (1, {m}) ON CONFLICT (id) DO UPDATE "
            "SET asked_us = excluded.asked_us WHERE excluded.asked_us > ledger_reads.asked_us"
        )
        if self.postgres:
            from psycopg import errors  # only when a PostgreSQL ledger is configured

            try:
                self.without_flush(connection)
                connection.cursor().execute(statement, (read_us,))
                connection.commit()
            except (errors.InsufficientPrivilege, errors.ReadOnlySqlTransaction):  # a reader's role: it may only read
                connection.rollback()
            return
        # A writer holding SQLite's write lock for a long batch must not hold the read up here.
        (busy_ms,) = connection.execute("PRAGMA busy_timeout").fetchone()
        connection.execute(f"PRAGMA busy_timeout = {_ASK_BUSY_MS}")
        try:
            connection.execute(statement, (read_us,))
            connection.commit()
        except sqlite3.OperationalError:  # locked: the heartbeat will do
            connection.rollback()
        finally:
            connection.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")

    def live_writers(self, connection: Any) -> list[WriterMark]:
        """The marks of every writer whose heartbeat is recent."""
        cursor = connection.cursor()
        cursor.execute("SELECT owner, caught_up_us, heartbeat_us FROM ledger_writers")
        marks = [WriterMark(owner, caught_up, heartbeat) for owner, caught_up, heartbeat in cursor.fetchall()]
        now_us = self.clock_us(connection)
        return [mark for mark in marks if now_us - mark.heartbeat_us < STALE_S * 1_000_000]


def wait_for_writers(sql: SqlLedger, connection: Any, *, wait_s: float, wake: Callable[[], None] | None = None) -> None:
    """Return once every live writer has committed what was journaled before now; or
    raise LedgerBehind after `wait_s`. `wake`: nudges this process's own writer."""
    started = time.monotonic()
    watermarks = Watermarks(sql)
    read_us = watermarks.clock_us(connection)
    watermarks.ask(connection, read_us)
    if wake is not None:
        wake()
    pause = _FIRST_PAUSE_S
    while True:
        marks = watermarks.live_writers(connection)
        connection.commit()  # PostgreSQL: end the transaction, so that the next look is a fresh one
        behind = [mark.owner for mark in marks if (mark.caught_up_us or 0) <= read_us]
        if not behind:
            return
        waited_s = time.monotonic() - started
        if waited_s >= wait_s:
            raise LedgerBehind(behind, waited_s)
        time.sleep(min(pause, wait_s - waited_s))
        pause = min(pause * 2, _LONGEST_PAUSE_S)
