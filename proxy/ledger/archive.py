"""Archiving whole months, as the database sees it (`tollgate ledger archive`, in
proxy/finance/archive.py, writes the files first): which months can go, what they
hold, and taking them away once their files are written.

PostgreSQL: a month's two partitions are detached from `ledger` and `ledger_charges`
and dropped, or with `keep` renamed `archived_ledger_y2026m09` (and its charges'),
to be attached again by hand. SQLite: the month's rows and charges are deleted.
Either way in one transaction that first checks, with the month locked against
writers, that it still holds what was exported: a row that came late (a journal
replayed) stops the archive rather than being lost. `ledger_archives` records the
month; the rollup keeps its sums, so a report of whole days still counts it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from .filters import Filters, Refused, made_at
from .partitions import attached_months, next_month, partition_name

if TYPE_CHECKING:
    from .sql import SqlLedger


class ArchiveRefused(Refused):
    """A month that cannot be archived as asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Month:
    month: str  # YYYY-MM
    rows: int
    charges: int
    cost_nanousd: int  # its charges' sum

    @property
    def period(self) -> Filters:
        return Filters(since=f"{self.month}-01", until=f"{next_month(self.month)}-01")


def months_before(sql: SqlLedger, connection: Any, before: str) -> list[str]:
    """The months before `before` (YYYY-MM) that hold rows, oldest first."""
    cursor = connection.cursor()
    if sql.postgres:
        candidates = sorted(month for month in attached_months(cursor) if month < before)
    else:
        cursor.execute("SELECT MIN(created_at) FROM ledger WHERE created_at < ?", (f"{before}-01",))
        (oldest,) = cursor.fetchone()
        candidates, month = [], oldest[:7] if oldest else before
        while month < before:
            candidates.append(month)
            month = next_month(month)
    return [month for month in candidates if _has_rows(sql, cursor, month)]


def measure(sql: SqlLedger, connection: Any, month: str) -> Month:
    """What `month` holds now, and refused if a request in it is still running."""
    cursor = connection.cursor()
    period, mark = _period(sql.mark), sql.mark
    cursor.execute(
        f"SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'started') FROM ledger WHERE {period}", _bounds(month) * 2
    )
    rows, running = cursor.fetchone()
    if running:
        raise ArchiveRefused(
            f"{month} has {running} request(s) still running (status started): a proxy that stopped without draining "
            "left them. Start a proxy on that journal directory (its writer abandons them), then archive again."
        )
    cursor.execute(
        f"SELECT COUNT(*), COALESCE(SUM(cost_nanousd), 0) FROM ledger_charges WHERE day >= {mark} AND day < {mark}",
        _bounds(month),
    )
    charges, cost = cursor.fetchone()
    return Month(month, int(rows), int(charges), int(cost))


def take_away(sql: SqlLedger, connection: Any, exported: Month, files: list[str], *, keep: bool) -> None:
    """Detach (PostgreSQL) or delete (SQLite) the month that `exported` describes, and record
    it archived, in one transaction; refused if the month no longer holds what was exported."""
    cursor = connection.cursor()
    month = exported.month
    names = [partition_name(table, month) for table in ("ledger", "ledger_charges")]
    if sql.postgres:
        cursor.execute("SET LOCAL lock_timeout = '10s'")  # a long read on the ledger: give up, not stall writers
        cursor.execute(f"LOCK TABLE {', '.join(names)} IN SHARE MODE")  # no writer until this commits
    else:
        connection.commit()
        cursor.execute("BEGIN IMMEDIATE")  # SQLite: the write lock, before counting
    now = measure(sql, connection, month)
    if now != exported:
        raise ArchiveRefused(
            f"{month} changed while it was being exported ({exported.rows} rows then, {now.rows} now): a late row "
            "came in. Nothing was taken away; archive again."
        )
    if sql.postgres:
        for table, name in zip(("ledger", "ledger_charges"), names, strict=True):
            cursor.execute(f"ALTER TABLE {table} DETACH PARTITION {name}")
            cursor.execute(f"ALTER TABLE {name} RENAME TO archived_{name}" if keep else f"DROP TABLE {name}")
        sql.schema.partitions.forget()
    else:
        cursor.execute("DELETE FROM ledger_charges WHERE day >= ? AND day < ?", _bounds(month))
        cursor.execute(f"DELETE FROM ledger WHERE {_period(sql.mark)}", _bounds(month) * 2)
    mark = sql.mark
    cursor.execute(
        f"INSERT INTO ledger_archives (month, archived_at, files, rows_archived, charges, cost_nanousd) "
        f"VALUES ({', '.join([mark] * 6)})",
        (month, _now(), orjson.dumps(files).decode(), now.rows, now.charges, now.cost_nanousd),
    )


def archived(sql: SqlLedger, connection: Any) -> dict[str, list[str]]:
    """The months archived, and their files."""
    cursor = connection.cursor()
    cursor.execute("SELECT month, files FROM ledger_archives ORDER BY month")
    return {month: orjson.loads(files) for month, files in cursor.fetchall()}


def archived_month_of(sql: SqlLedger, connection: Any, request_id: str) -> tuple[str, list[str]] | None:
    """The archived month a request id was made in, with its files; None if that month is not
    archived or the id does not say (ids made by Tollgate start with the time, ids.py)."""
    made = made_at(request_id)
    if made is None:
        return None
    cursor = connection.cursor()
    # Made in a month's last moment, its row may be in the next.
    months = sorted({made.strftime("%Y-%m"), (made + dt.timedelta(seconds=1)).strftime("%Y-%m")})
    cursor.execute(
        f"SELECT month, files FROM ledger_archives WHERE month IN ({', '.join([sql.mark] * len(months))})", months
    )
    found = cursor.fetchone()
    return (found[0], orjson.loads(found[1])) if found else None


def _has_rows(sql: SqlLedger, cursor: Any, month: str) -> bool:
    cursor.execute(f"SELECT 1 FROM ledger WHERE {_period(sql.mark)} LIMIT 1", _bounds(month) * 2)
    return cursor.fetchone() is not None


def _period(mark: str) -> str:
    """A month's rows (`_bounds` twice), said of `day` (PostgreSQL's partitions) and `created_at` (SQLite's index)."""
    return f"day >= {mark} AND day < {mark} AND created_at >= {mark} AND created_at < {mark}"


def _bounds(month: str) -> tuple[str, str]:
    return f"{month}-01", f"{next_month(month)}-01"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
