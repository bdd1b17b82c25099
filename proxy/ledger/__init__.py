"""The ledger: one row per client request, journaled before the upstream is called
and batched into SQLite or PostgreSQL off the request path, so that a SIGTERM, a
`kill -9` or a database outage loses no row. Reads wait for the writers to catch
up first (barrier.py), so they see every request answered before they began."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from .barrier import LedgerBehind, Watermarks, wait_for_writers
from .journal import Journal
from .readers import Readers
from .row import Charge, CostBasis, LedgerRow, from_nano, to_nano, utc_now
from .spending import ArchivedPeriod
from .sql import GROUPS, Filters, SpendGroup, SqlLedger

if TYPE_CHECKING:  # the writer process imports this package: it stays free of pydantic and the config
    from providers.errors import ProxyError

    from ..config.schema import LedgerSettings

__all__ = [
    "GROUPS",
    "ArchivedPeriod",
    "Charge",
    "CostBasis",
    "DisabledLedger",
    "Filters",
    "Ledger",
    "LedgerBehind",
    "LedgerRow",
    "SpendGroup",
    "SqlLedger",
    "from_nano",
    "open_ledger",
    "to_nano",
    "utc_now",
]

T = TypeVar("T")
Work = Callable[[SqlLedger, Any], T]  # a read: the ledger's SQL and a connection
log = logging.getLogger("tollgate.ledger")


def open_ledger(settings: LedgerSettings) -> Ledger | DisabledLedger:
    return Ledger(settings) if settings.enabled else DisabledLedger()


class DisabledLedger:
    """`ledger.enabled: false`: rows go nowhere; reading them is a 503."""

    writer_running = True  # nothing waits for a writer

    def write(self, row: LedgerRow) -> None:
        pass

    async def start(self) -> None:
        pass

    def keep_writer_running(self) -> None:
        pass

    async def close(self) -> bool:
        return True

    async def read(self, work: Work[T], *, wait_s: float | None = None) -> T:
        raise self._off()

    async def get(self, request_id: str) -> LedgerRow | None:
        raise self._off()

    async def find(self, filters: Filters, limit: int) -> list[LedgerRow]:
        raise self._off()

    async def spend(
        self, group_by: Sequence[str], filters: Filters, *, wait_s: float | None = None
    ) -> list[SpendGroup]:
        raise self._off()

    async def set_review(self, request_id: str, status: str, review: dict[str, Any]) -> bool:
        raise self._off()

    async def stream(self, work: Callable[[SqlLedger, Any], Iterator[str]]) -> AsyncIterator[str]:
        raise self._off()

    @staticmethod
    def _off() -> ProxyError:
        message = "The ledger is disabled on this proxy (ledger.enabled: false); nothing is recorded."
        return _unavailable(message, code="ledger_disabled", retry_after_s=None)


class Ledger:
    def __init__(self, settings: LedgerSettings) -> None:
        # Here, not above: the writer process imports this package, and needs neither its own
        # handle nor the subprocess and tempfile modules that handle brings (~1.3 MB).
        from .keeper import WriterKeeper
        from .writer import LedgerWriter

        self.settings = settings
        self.sql = SqlLedger(settings.url)
        self.journal = Journal(Path(settings.journal_dir))
        self.writer = LedgerWriter(self.journal, settings.url)
        self.writer.start()
        self._keeper = WriterKeeper(self.writer)
        self._readers = Readers(self.sql)
        self._schema_made = self._registered = False

    async def start(self) -> None:
        """Before serving: register this process's writer in the database (its own
        process takes a moment to start), so that from the first answer on, a read on
        any replica waits for what this process journals."""

        def register() -> None:
            with self.sql.connect() as connection:
                self.sql.create_schema(connection)
                watermarks = Watermarks(self.sql)
                now_us = watermarks.clock_us(connection)
                watermarks.mark(connection, self.journal.owner, caught_up_us=None, heartbeat_us=now_us)

        try:
            await _to_thread(register)
        except Exception as error:  # the database is away: the writer registers when it connects
            log.warning(
                "could not reach the ledger database at start-up; reads elsewhere may miss this process's "
                "rows until its writer connects",
                extra={"error": f"{type(error).__name__}: {error}"[:300]},
            )
            return
        self._schema_made = self._registered = True

    def keep_writer_running(self) -> None:
        """From the serving event loop: restart the writer process whenever it dies."""
        self._keeper.start()

    @property
    def writer_running(self) -> bool:
        return self._keeper.running

    def write(self, row: LedgerRow) -> None:
        """Journal the row's current state; the database follows in the background."""
        row.owner = self.journal.owner
        self.journal.append(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))

    async def close(self) -> bool:
        """Apply everything journaled, then release the journal. False if the
        database could not take it all in time: the journal stays, for the next start."""
        self._keeper.stop()
        self._readers.close()
        drained = await _to_thread(self.writer.stop, self.settings.drain_timeout_s)
        self.journal.close(remove=drained)
        return drained

    # Reads run on a worker thread with their own connection: the event loop never waits on the database.

    async def read(self, work: Work[T], *, wait_s: float | None = None) -> T:
        """`work` done once every writer has committed what was journaled before now,
        waiting at most `wait_s` (`ledger.read_wait_s`); else a 503 that says to retry."""
        wait_s = self.settings.read_wait_s if wait_s is None else wait_s

        def run() -> T:
            connection = self._opened(wait_s)
            healthy = False
            try:
                result = work(self.sql, connection)
                connection.commit()
                healthy = True
                return result
            except self._connection_errors():
                raise
            except Exception:
                healthy = True  # the work refused (a 404, say): the connection itself is fine
                raise
            finally:
                self._readers.give_back(connection, healthy=healthy)

        return await self._guarded(run)

    async def stream(self, work: Callable[[SqlLedger, Any], Iterator[str]]) -> AsyncIterator[str]:
        """`work`'s pieces (an export of any size), each read on a worker thread as the one
        before is sent. The barrier is passed, or its 503 raised, before the first piece."""
        connection = await self._guarded(lambda: self._opened(self.settings.read_wait_s))
        return self._pieces(connection, work)

    async def _pieces(self, connection: Any, work: Callable[[SqlLedger, Any], Iterator[str]]) -> AsyncIterator[str]:
        import anyio  # its threads finish what they are doing before a cancelled send moves on

        try:
            pieces = work(self.sql, connection)
            while (piece := await anyio.to_thread.run_sync(next, pieces, None)) is not None:
                yield piece
        finally:
            with anyio.CancelScope(shield=True):  # the client hung up: the connection is still given back
                await anyio.to_thread.run_sync(lambda: self._readers.give_back(connection, healthy=True))

    def _opened(self, wait_s: float) -> Any:
        """A connection on which every answered request is visible (see barrier.py). One kept
        from an earlier read that fails (the database restarted since) is replaced, once."""
        connection, kept = self._readers.take()
        try:
            self._ready(connection, wait_s)
            return connection
        except self._connection_errors():
            self._readers.give_back(connection, healthy=False)
            if not kept:
                raise
        except BaseException:
            self._readers.give_back(connection, healthy=False)
            raise
        connection = self.sql.open()
        try:
            self._ready(connection, wait_s)
            return connection
        except BaseException:
            self._readers.give_back(connection, healthy=False)
            raise

    def _ready(self, connection: Any, wait_s: float) -> None:
        if not self._schema_made:
            # A reader may come before the writer process (at idle priority) has made the
            # tables; making them here (idempotent) answers "no row yet", not a 500.
            self.sql.create_schema(connection)
            connection.commit()  # the writer's own create_schema would wait on ours
            self._schema_made = True
        self._wait_for_writers(connection, wait_s)

    async def _guarded(self, run: Callable[[], T]) -> T:
        """`run` on a worker thread; the database's failures as the answers they call for."""
        try:
            return await _to_thread(run)
        except LedgerBehind as behind:
            raise _behind(behind) from None
        except ArchivedPeriod as archived:
            from ..errors import InvalidRequest

            raise InvalidRequest(str(archived), param="since") from None
        except self._connection_errors() as error:
            log.warning("ledger read failed", extra={"error": f"{type(error).__name__}: {error}"[:300]})
            message = (
                "The ledger database cannot be read just now; retry shortly. The proxy keeps recording "
                "requests in its journal meanwhile."
            )
            raise _unavailable(message, code="ledger_unavailable", retry_after_s=5) from None

    def _wait_for_writers(self, connection: Any, wait_s: float) -> None:
        started = time.monotonic()
        # This process's writer must be registered before the barrier knows to wait for it.
        if not (self._registered or self.writer.wait_until_connected(wait_s)):
            raise LedgerBehind([self.journal.owner], time.monotonic() - started)
        left_s = max(wait_s - (time.monotonic() - started), 0.0)
        wait_for_writers(self.sql, connection, wait_s=left_s, wake=self.writer.wake)

    def _connection_errors(self) -> tuple[type[Exception], ...]:
        if self.sql.postgres:
            import psycopg  # only when a PostgreSQL ledger is configured

            return (psycopg.OperationalError,)
        return (sqlite3.OperationalError,)

    async def get(self, request_id: str) -> LedgerRow | None:
        return await self.read(lambda sql, connection: sql.get(connection, request_id))

    async def find(self, filters: Filters, limit: int) -> list[LedgerRow]:
        return await self.read(lambda sql, connection: sql.find(connection, filters, limit))

    async def spend(
        self, group_by: Sequence[str], filters: Filters, *, wait_s: float | None = None
    ) -> list[SpendGroup]:
        return await self.read(lambda sql, connection: sql.spend(connection, group_by, filters), wait_s=wait_s)

    async def set_review(self, request_id: str, status: str, review: dict[str, Any]) -> bool:
        return await self.read(lambda sql, connection: sql.set_review(connection, request_id, status, review))


async def _to_thread(work: Callable[..., T], *args: Any) -> T:
    # asyncio is imported here, not with the package: the writer process imports this
    # package and has no event loop (asyncio and the ssl it loads are ~9 MB of its RSS).
    import asyncio

    return await asyncio.to_thread(work, *args)


def _behind(behind: LedgerBehind) -> ProxyError:
    message = (
        f"The ledger has not yet recorded every request answered before this read: {len(behind.behind)} "
        f"ledger writer(s) did not catch up within {behind.waited_s:.1f}s (their database may be slow or "
        "unreachable; their rows wait in their journals). Retry shortly."
    )
    return _unavailable(message, code="ledger_behind", retry_after_s=2)


def _unavailable(message: str, *, code: str, retry_after_s: int | None) -> ProxyError:
    from providers.errors import ProxyError

    headers = {"retry-after": str(retry_after_s)} if retry_after_s is not None else None
    error = ProxyError(message, code=code, headers=headers)
    error.status = 503
    return error
