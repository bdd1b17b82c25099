"""Making the ledger's tables, and bringing a ledger an older Tollgate made up to date.

The tables: `ledger` (a row per request) and `ledger_charges` (what each provider
bills for it), on PostgreSQL partitioned by month (partitions.py); `ledger_daily`,
the rollup (rollup.py); `ledger_archives`, the months `tollgate ledger archive` took
away; and the read barrier's two (barrier.py). Indexes, each for a query that needs
it (bench/results.md, "Ledger at scale", has their plans):

- the primary keys: one row by request id (and, for charges, a row's charges);
- `ledger_created_at`: periods (exports, spend at the ends of a period, newest first);
- `ledger_started`: the few rows still running, by writer (abandoning a dead writer's
  rows, counting requests in flight): partial, so it stays as small as they are;
- `ledger_route`: `/admin/requests?route=...`.

An older ledger is upgraded in one transaction by the first process that reaches
it, others waiting on the same lock: newer columns are added (NULL in old rows);
an unpartitioned PostgreSQL ledger is copied into monthly partitions; the rollup is
summed from the rows. `tollgate ledger migrate` does the same ahead of an upgrade,
so that no proxy waits on it at start-up (docs/ledger-at-scale.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from . import rollup
from .barrier import SCHEMA as BARRIER_SCHEMA
from .columns import ALL_CHARGE_COLUMNS, CHARGE_TYPES, COLUMNS, TYPES, column_list
from .partitions import SCHEMA_LOCK, Partitions, next_month, this_month

log = logging.getLogger("tollgate.ledger")

ARCHIVES = (
    "CREATE TABLE IF NOT EXISTS ledger_archives (month TEXT PRIMARY KEY, archived_at TEXT NOT NULL, "
    "files TEXT NOT NULL, rows_archived BIGINT NOT NULL, charges BIGINT NOT NULL, cost_nanousd BIGINT NOT NULL)"
)
_INDEXES = {
    "ledger_created_at": "CREATE INDEX IF NOT EXISTS ledger_created_at ON ledger (created_at)",
    "ledger_started": "CREATE INDEX IF NOT EXISTS ledger_started ON ledger (owner) WHERE status = 'started'",
    "ledger_route": "CREATE INDEX IF NOT EXISTS ledger_route ON ledger (route)",
}
_REPLACED_INDEX = "ledger_status_owner"  # (status, owner) held every row, for the few ledger_started holds
_ROLLUP_BATCH = 5000


class Schema:
    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        self.partitions = Partitions()

    def create(self, connection: Any) -> None:
        """Every table and index, idempotent; an older ledger upgraded on the way. Only
        what is missing is made: on PostgreSQL even `CREATE INDEX IF NOT EXISTS` waits
        for every transaction writing to the table, and holds up those behind it."""
        cursor = connection.cursor()
        if self.postgres:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            if self._kind(cursor, "ledger") == "r":
                self._partition_old_ledger(cursor)
        rows, charges = self._tables()
        made = {
            "ledger": rows,
            "ledger_charges": charges,
            "ledger_daily": rollup.SCHEMA,
            "ledger_archives": ARCHIVES,
            "ledger_writers": BARRIER_SCHEMA[0],
            "ledger_reads": BARRIER_SCHEMA[1],
            **_INDEXES,
        }
        present = self._present(cursor, [*made, _REPLACED_INDEX])
        for name, statement in made.items():
            if name not in present:
                cursor.execute(statement)
        if _REPLACED_INDEX in present:
            cursor.execute(f"DROP INDEX {_REPLACED_INDEX}")
        if "day" in self._add_missing_columns(cursor, "ledger", COLUMNS, TYPES):
            cursor.execute("UPDATE ledger SET day = substr(created_at, 1, 10)")
        if "day" in self._add_missing_columns(cursor, "ledger_charges", ALL_CHARGE_COLUMNS, CHARGE_TYPES):
            # An older SQLite ledger: its charges learn their row's day.
            cursor.execute(
                "UPDATE ledger_charges SET day = "
                "(SELECT day FROM ledger l WHERE l.request_id = ledger_charges.request_id)"
            )
        if self.postgres:
            month = this_month()
            self.partitions.ensure(cursor, [month, next_month(month)])
        if "ledger_daily" not in present:
            self._sum_rollup(connection)

    def _present(self, cursor: Any, names: Sequence[str]) -> set[str]:
        if self.postgres:
            cursor.execute("SELECT relname FROM pg_class WHERE relname = ANY(%s) AND pg_table_is_visible(oid)", [names])
        else:
            cursor.execute(f"SELECT name FROM sqlite_master WHERE name IN ({', '.join('?' * len(names))})", names)
        return {name for (name,) in cursor.fetchall()}

    def _tables(self) -> tuple[str, str]:
        rows, charges = column_list(COLUMNS, TYPES), column_list(ALL_CHARGE_COLUMNS, CHARGE_TYPES)
        if not self.postgres:
            return (
                f"CREATE TABLE IF NOT EXISTS ledger ({rows}, PRIMARY KEY (request_id))",
                f"CREATE TABLE IF NOT EXISTS ledger_charges ({charges}, PRIMARY KEY (request_id, seq))",
            )
        charges = charges.replace("day TEXT", "day TEXT NOT NULL")
        # The key holds `day`, as PostgreSQL requires of a partitioned table's unique keys.
        return (
            f"CREATE TABLE IF NOT EXISTS ledger ({rows}, PRIMARY KEY (request_id, day)) PARTITION BY RANGE (day)",
            f"CREATE TABLE IF NOT EXISTS ledger_charges ({charges}, PRIMARY KEY (request_id, day, seq)) "
            "PARTITION BY RANGE (day)",
        )

    def has(self, cursor: Any, table: str) -> bool:
        return self._kind(cursor, table) is not None

    def _kind(self, cursor: Any, table: str) -> str | None:
        """'r' (a table), 'p' (a partitioned table), or None: not there."""
        if self.postgres:
            cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (table,))
        else:
            cursor.execute("SELECT 'r' FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
        found = cursor.fetchone()
        return str(found[0]) if found else None

    def _add_missing_columns(self, cursor: Any, table: str, columns: Sequence[str], types: dict[str, str]) -> list[str]:
        """A ledger made by an older Tollgate gains the row's newer fields (NULL in old rows)."""
        cursor.execute(f"SELECT * FROM {table} LIMIT 0")
        present = {column[0] for column in cursor.description}
        added = [name for name in columns if name not in present]
        for name in added:
            kind = types.get(name, "TEXT").replace(" NOT NULL", "")  # old rows have no value
            cursor.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
        return added

    def _partition_old_ledger(self, cursor: Any) -> None:
        """An unpartitioned ledger (Tollgate before monthly partitions): its rows and charges
        are copied into partitioned tables of the same names, in this transaction."""
        began = time.monotonic()
        log.warning("partitioning the ledger by month: a one-time copy of its rows (see docs/ledger-at-scale.md)")
        for table in ("ledger", "ledger_charges"):
            cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_unpartitioned")
            cursor.execute(f"ALTER INDEX IF EXISTS {table}_pkey RENAME TO {table}_unpartitioned_pkey")
        cursor.execute("DROP INDEX IF EXISTS ledger_created_at, ledger_status_owner, ledger_route")
        self._add_missing_columns(cursor, "ledger_unpartitioned", COLUMNS, TYPES)
        undated = [name for name in ALL_CHARGE_COLUMNS if name != "day"]  # the day comes from the row
        self._add_missing_columns(cursor, "ledger_charges_unpartitioned", undated, CHARGE_TYPES)
        for statement in self._tables():
            cursor.execute(statement)
        day = "COALESCE(day, substr(created_at, 1, 10))"  # a row from before `day` was kept
        cursor.execute(f"SELECT DISTINCT substr({day}, 1, 7) FROM ledger_unpartitioned")
        self.partitions.ensure(cursor, [month for (month,) in cursor.fetchall()])
        copied = ", ".join(day if name == "day" else name for name in COLUMNS)
        cursor.execute(f"INSERT INTO ledger ({', '.join(COLUMNS)}) SELECT {copied} FROM ledger_unpartitioned")
        rows = cursor.rowcount
        charge_day = "COALESCE(l.day, substr(l.created_at, 1, 10))"
        charge_values = ", ".join(f"c.{name}" if name != "day" else charge_day for name in ALL_CHARGE_COLUMNS)
        cursor.execute(
            f"INSERT INTO ledger_charges ({', '.join(ALL_CHARGE_COLUMNS)}) SELECT {charge_values} "
            "FROM ledger_charges_unpartitioned c JOIN ledger_unpartitioned l ON l.request_id = c.request_id"
        )
        cursor.execute("DROP TABLE ledger_charges_unpartitioned, ledger_unpartitioned")
        log.warning(
            "partitioned the ledger by month",
            extra={"rows": rows, "seconds": round(time.monotonic() - began, 1)},
        )

    def _sum_rollup(self, connection: Any) -> None:
        """A ledger without its rollup (an older Tollgate's): sum it from the rows, once."""
        from .readback import finished_rows  # the rows as the rollup reads them

        delta: dict[rollup.Key, rollup.Sums] = {}
        for batch in finished_rows(connection, self.postgres, batch=_ROLLUP_BATCH):
            for key, sums in rollup.difference([], batch).items():
                total = delta.setdefault(key, [0, 0, 0])
                for index, value in enumerate(sums):
                    total[index] += value
        rollup.apply(connection.cursor(), delta, mark="%s" if self.postgres else "?")
        if delta:
            log.warning("summed the ledger's daily rollup from its rows", extra={"groups": len(delta)})
