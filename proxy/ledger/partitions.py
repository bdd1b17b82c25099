"""PostgreSQL: the ledger's rows and charges live in one table per month, declarative
RANGE partitions of `ledger` and `ledger_charges` on `day` (`ledger_y2026m11` holds
2026-11-01 up to 2026-12-01). A query bounded in time reads only its months; a month
is archived by detaching it whole (archive.py), not by deleting its rows one by one.

A month's partitions are made before its first row: the writer makes this month's
and the next at start, and any other month a batch brings (a journal replayed late).
Each is made as a plain table and then attached: attaching locks the parent only
against other schema changes, where `CREATE TABLE ... PARTITION OF` would block
every read and write of the ledger until the writer's transaction ends.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

PARTITIONED = ("ledger", "ledger_charges")
SCHEMA_LOCK = 0x746F6C6C  # pg_advisory_xact_lock key: one process at a time makes or changes the tables


def month_of(day: str) -> str:
    """'2026-11-05' → '2026-11'."""
    return day[:7]


def next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def this_month() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m")


def partition_name(table: str, month: str) -> str:
    return f"{table}_y{month[:4]}m{month[5:7]}"


def check_month(text: str) -> str:
    """A month as YYYY-MM, or ValueError saying how to write one."""
    if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", text):
        raise ValueError(f"'{text}' is not a month: write it as YYYY-MM, e.g. 2026-09")
    return text


class Partitions:
    """The months that have partitions, as this process last saw them."""

    def __init__(self) -> None:
        self._known: set[str] = set()

    def ensure(self, cursor: Any, months: Iterable[str]) -> None:
        """Every month in `months` has its partitions once this returns (in the caller's transaction)."""
        wanted = set(months)
        if wanted <= self._known:
            return
        for month in wanted:  # months go into DDL: only ever digits
            check_month(month)
        self._known = attached_months(cursor)
        missing = wanted - self._known
        if not missing:
            return
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        missing -= attached_months(cursor)  # another writer may have made them while we waited
        for month in sorted(missing):
            for table in PARTITIONED:
                name = partition_name(table, month)
                cursor.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)")
                cursor.execute(
                    f"ALTER TABLE {table} ATTACH PARTITION {name} "
                    f"FOR VALUES FROM ('{month}-01') TO ('{next_month(month)}-01')"
                )
        self._known |= wanted

    def forget(self) -> None:
        """A write failed (a month archived meanwhile, say): look again next time."""
        self._known.clear()


def attached_months(cursor: Any) -> set[str]:
    """The months `ledger` has a partition for, from the catalog."""
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'ledger'::regclass"
    )
    prefix = "ledger_y"
    return {f"{name[8:12]}-{name[13:15]}" for (name,) in cursor.fetchall() if name.startswith(prefix)}
