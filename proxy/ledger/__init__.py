"""The ledger: one row per client request, journaled before the upstream is called
and batched into SQLite or PostgreSQL off the request path, so that a SIGTERM, a
`kill -9` or a database outage loses no row."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from .journal import Journal
from .keeper import WriterKeeper
from .row import Charge, LedgerRow, from_nano, to_nano, utc_now
from .sql import GROUPS, Filters, SpendGroup, SqlLedger
from .writer import LedgerWriter

if TYPE_CHECKING:  # the writer process imports this package: it stays free of pydantic and the config
    from providers.errors import ProxyError

    from ..config.schema import LedgerSettings

__all__ = [
    "GROUPS",
    "Charge",
    "DisabledLedger",
    "Filters",
    "Ledger",
    "LedgerRow",
    "SpendGroup",
    "from_nano",
    "open_ledger",
    "to_nano",
    "utc_now",
]

T = TypeVar("T")


def open_ledger(settings: LedgerSettings) -> Ledger | DisabledLedger:
    return Ledger(settings) if settings.enabled else DisabledLedger()


class DisabledLedger:
    """`ledger.enabled: false`: rows go nowhere; reading them is a 503."""

    writer_running = True  # nothing waits for a writer

    def write(self, row: LedgerRow) -> None:
        pass

    def keep_writer_running(self) -> None:
        pass

    async def close(self) -> bool:
        return True

    async def get(self, request_id: str) -> LedgerRow | None:
        raise self._off()

    async def find(self, filters: Filters, limit: int) -> list[LedgerRow]:
        raise self._off()

    async def spend(self, group_by: Sequence[str], filters: Filters) -> list[SpendGroup]:
        raise self._off()

    async def set_review(self, request_id: str, status: str, review: dict[str, Any]) -> bool:
        raise self._off()

    async def export(self, filters: Filters, render: Callable[[Iterator[LedgerRow]], T]) -> T:
        raise self._off()

    @staticmethod
    def _off() -> ProxyError:
        from providers.errors import ProxyError

        error = ProxyError("The ledger is disabled on this proxy (ledger.enabled: false); nothing is recorded.")
        error.status, error.code = 503, "ledger_disabled"
        return error


class Ledger:
    def __init__(self, settings: LedgerSettings) -> None:
        self.settings = settings
        self.sql = SqlLedger(settings.url)
        self.journal = Journal(Path(settings.journal_dir))
        self.writer = LedgerWriter(self.journal, settings.url)
        self.writer.start()
        self._keeper = WriterKeeper(self.writer)
        self._schema_made = False

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
        drained = await asyncio.to_thread(self.writer.stop, self.settings.drain_timeout_s)
        self.journal.close(remove=drained)
        return drained

    # Reads run on a worker thread with their own connection: the event loop never waits on the database.

    async def get(self, request_id: str) -> LedgerRow | None:
        return await self._read(lambda connection: self.sql.get(connection, request_id))

    async def find(self, filters: Filters, limit: int) -> list[LedgerRow]:
        return await self._read(lambda connection: self.sql.find(connection, filters, limit))

    async def spend(self, group_by: Sequence[str], filters: Filters) -> list[SpendGroup]:
        return await self._read(lambda connection: self.sql.spend(connection, group_by, filters))

    async def set_review(self, request_id: str, status: str, review: dict[str, Any]) -> bool:
        return await self._read(lambda connection: self.sql.set_review(connection, request_id, status, review))

    async def export(self, filters: Filters, render: Callable[[Iterator[LedgerRow]], T]) -> T:
        """`render` takes every row the filters match, as they are read, on the worker thread."""
        return await self._read(lambda connection: render(self.sql.each(connection, filters)))

    async def _read(self, work: Callable[[Any], T]) -> T:
        def run() -> T:
            with self.sql.connect() as connection:
                if not self._schema_made:
                    # A reader may come before the writer process (at idle priority) has made the
                    # tables; making them here (idempotent) answers "no row yet", not a 500.
                    self.sql.create_schema(connection)
                    self._schema_made = True
                return work(connection)

        return await asyncio.to_thread(run)
