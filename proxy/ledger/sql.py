"""The ledger in SQL: SQLite by default, PostgreSQL for several replicas. One
implementation over DB-API; the dialects differ only in placeholders and types.

Writes are upserts of whole rows and never move a row backwards: a replayed
"started" snapshot cannot undo a finished row, nor a replay undo a review. So
replaying a journal twice is harmless, which is what makes recovery simple.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from . import rollup
from .columns import (
    ALL_CHARGE_COLUMNS,
    CHARGE_COLUMNS,
    COLUMNS,
    JSON,
    JSON_INDEXES,
    KEPT_ON_UPDATE,
    ROW_COLUMNS,
)
from .filters import Filters, days, days_of_id, where
from .readback import finished_before
from .row import Charge, LedgerRow, answers, priced
from .schema import Schema
from .spending import GROUPS, SpendGroup, spend

__all__ = ["GROUPS", "BilledRow", "Filters", "SpendGroup", "SqlLedger"]


@dataclass(frozen=True, slots=True)
class BilledRow:
    """A row that one provider bills, as reconciling against that provider's own report reads it."""

    day: str
    model: str
    status: str
    cost_basis: str | None
    images: int  # the row's images and cost lines where that provider answered it; else none
    cost_lines: list[dict[str, Any]]
    cost_nanousd: int  # that provider's charges on the row
    price_table: str | None


def _priced(record: Mapping[str, Any], index: int, charge: Mapping[str, Any]) -> tuple[int, str]:
    lines = record.get("cost_lines") or []
    return priced(lines, answered=answers(index, charge.get("provider"), record.get("provider"), lines))


class SqlLedger:
    """The ledger tables, reached through a DB-API connection factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith(("postgresql://", "postgres://"))
        self._mark = "%s" if self.postgres else "?"
        self.schema = Schema(self.postgres)
        self._rolled_up = False  # the rollup exists (checked once per instance, then known)

    @property
    def mark(self) -> str:
        """The dialect's placeholder for a parameter."""
        return self._mark

    def open(self) -> Any:
        """A new connection; the caller commits and closes it."""
        if self.postgres:
            import psycopg  # only when a PostgreSQL ledger is configured

            return psycopg.connect(self.url, connect_timeout=5)
        path = self.url.removeprefix("sqlite:///")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=30, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    @contextmanager
    def connect(self) -> Iterator[Any]:
        """One unit of work on a fresh connection: committed, or rolled back on error."""
        connection = self.open()
        try:
            yield connection
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.close()

    # --- schema and writes (the writer process) -------------------------------------------

    def create_schema(self, connection: Any) -> None:
        self.schema.create(connection)
        self._rolled_up = True

    def upsert(self, connection: Any, records: Sequence[Mapping[str, Any]]) -> None:
        """Write rows given as records (`LedgerRow.record()`, or a journal line parsed):
        the writer goes from journal to SQL without building objects on the way. The
        rollup follows in the same transaction: it gains what the rows gained."""
        records = list({record["request_id"]: record for record in records}.values())  # the last snapshot wins
        cursor = connection.cursor()
        if self.postgres:
            self.schema.partitions.ensure(cursor, {record["created_at"][:7] for record in records})
        before = finished_before(cursor, self.postgres, records)
        # A started snapshot never undoes a finished row (see `_upsert_sql`): those rows keep what they had.
        changed = [
            record for record in records if not (record["status"] == "started" and record["request_id"] in before)
        ]
        replaced = [before[record["request_id"]] for record in changed if record["request_id"] in before]
        delta = rollup.difference(replaced, changed)
        rows = [self._values(record) for record in records]
        final = [record for record in records if record["status"] != "started"]
        # .get: a journal written by an older Tollgate has charges without the newer fields
        charges = [
            (
                record["request_id"],
                record["created_at"][:10],
                seq,
                *(charge.get(name) for name in CHARGE_COLUMNS),
                *paid,
            )
            for record in final
            for seq, charge in enumerate(record["charges"])
            for paid in [_priced(record, seq, charge)]
        ]
        finished = [(record["request_id"], record["created_at"][:10]) for record in final]
        try:
            if self.postgres:
                self._copy_upsert(cursor, rows, finished, charges)
            else:
                cursor.executemany(self._upsert_sql("VALUES (" + ", ".join(["?"] * len(COLUMNS)) + ")"), rows)
                cursor.executemany("DELETE FROM ledger_charges WHERE request_id = ? AND day = ?", finished)
                cursor.executemany(
                    f"INSERT INTO ledger_charges ({', '.join(ALL_CHARGE_COLUMNS)}) "
                    f"VALUES ({', '.join(['?'] * len(ALL_CHARGE_COLUMNS))})",
                    charges,
                )
            rollup.apply(cursor, delta, mark=self._mark)
        except Exception:
            self.schema.partitions.forget()  # a month archived meanwhile, say: look at the partitions again
            raise

    def _copy_upsert(self, cursor: Any, rows: list[tuple], finished: list[tuple], charges: list[tuple]) -> None:
        """PostgreSQL: a batch goes in by COPY, several times faster than a statement per
        row, then into the ledger with one upsert that keeps its rules (see `_upsert_sql`)."""
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS ledger_incoming (LIKE ledger INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY ledger_incoming ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(self._upsert_sql(f"SELECT {', '.join(COLUMNS)} FROM ledger_incoming"))
        # One statement a row, pipelined: a single `= ANY(array)` is planned as a scan of the whole
        # table until the table has statistics, which made each batch slower than the last.
        cursor.executemany("DELETE FROM ledger_charges WHERE request_id = %s AND day = %s", finished)
        if charges:
            with cursor.copy(f"COPY ledger_charges ({', '.join(ALL_CHARGE_COLUMNS)}) FROM STDIN") as copy:
                for charge in charges:
                    copy.write_row(charge)

    def _upsert_sql(self, source: str) -> str:
        """Insert from `source` (VALUES or a SELECT); a row already there is updated, but
        never moved backwards to started, nor its review undone. The conflict is on the
        table's key: (request_id, day) on PostgreSQL, where partitions require `day` in it."""
        updates = ", ".join(f"{name} = excluded.{name}" for name in COLUMNS if name not in KEPT_ON_UPDATE)
        key = "request_id, day" if self.postgres else "request_id"
        return (
            f"INSERT INTO ledger ({', '.join(COLUMNS)}) {source} "
            f"ON CONFLICT ({key}) DO UPDATE SET {updates}, "
            "review_status = CASE WHEN ledger.review_status IN ('approved', 'rejected') "
            "THEN ledger.review_status ELSE excluded.review_status END, "
            "review = CASE WHEN ledger.review_status IN ('approved', 'rejected') "
            "THEN ledger.review ELSE excluded.review END "
            "WHERE NOT (ledger.status <> 'started' AND excluded.status = 'started')"
        )

    def _values(self, record: Mapping[str, Any]) -> tuple:
        values = [record[name] for name in ROW_COLUMNS]
        for index in JSON_INDEXES:
            if values[index] is not None:
                values[index] = orjson.dumps(values[index]).decode()
        values.append(record["created_at"][:10])  # day
        return tuple(values)

    # --- reads (admin API, reports, recovery) ---------------------------------------------

    def get(self, connection: Any, request_id: str) -> LedgerRow | None:
        """The row, looked for first in the days its id says (on PostgreSQL one month's
        partition rather than every month's), then everywhere."""
        m = self._mark
        if days := days_of_id(request_id):
            rows = self._select(connection, f"request_id = {m} AND day >= {m} AND day <= {m}", [request_id, *days])
            if rows:
                return rows[0]
        rows = self._select(connection, f"request_id = {m}", [request_id])
        return rows[0] if rows else None

    def started_by(self, connection: Any, owner: str) -> list[LedgerRow]:
        return self._select(connection, f"status = 'started' AND owner = {self._mark}", [owner])

    def find(self, connection: Any, filters: Filters, limit: int) -> list[LedgerRow]:
        clause, params = where(filters, alias="", mark=self._mark)
        return self._select(connection, clause, params, order="created_at DESC", limit=limit)

    def each(self, connection: Any, filters: Filters, *, batch: int = 1000) -> Iterator[LedgerRow]:
        """Every row the filters match, oldest first, with its charges: read a batch at a time
        (on PostgreSQL through a server-side cursor), so an export of a month never holds
        more than a batch of it in memory."""
        clause, params = where(filters, alias="", mark=self._mark)
        cursor = connection.cursor(name="tollgate_each") if self.postgres else connection.cursor()
        if self.postgres:
            cursor.itersize = batch
        cursor.execute(
            f"SELECT {', '.join(ROW_COLUMNS)} FROM ledger WHERE {clause} ORDER BY created_at, request_id", params
        )
        charges = connection.cursor()
        try:
            while records := cursor.fetchmany(batch):
                rows = [self._row(record) for record in records]
                self._attach_charges(charges, rows)
                yield from rows
        finally:
            cursor.close()

    def billed_by(self, connection: Any, provider: str, filters: Filters) -> Iterator[BilledRow]:
        """Every row `provider` has a charge on, with the sum of its charges there."""
        clause, params = where(filters, alias="l.", mark=self._mark)
        # The charges of the period's days only: a month's, not the whole ledger's, are summed.
        charge_days, day_params = days(filters, alias="", mark=self._mark)
        cursor = connection.cursor()
        cursor.execute(
            "SELECT l.day, COALESCE(l.upstream_model, l.route), l.status, l.cost_basis, l.provider, l.images, "
            "l.cost_lines, c.cost, c.price_table FROM ledger l JOIN (SELECT request_id, day, SUM(cost_nanousd) AS "
            f"cost, MAX(price_table) AS price_table FROM ledger_charges WHERE provider = {self._mark}{charge_days} "
            f"GROUP BY request_id, day) c ON c.request_id = l.request_id AND c.day = l.day WHERE {clause}",
            [provider, *day_params, *params],
        )
        while records := cursor.fetchmany(1000):
            for day, model, status, basis, answered_by, images, lines, cost, table in records:
                answered = answered_by == provider
                yield BilledRow(
                    day,
                    model or "unknown",
                    status,
                    basis,
                    (images or 0) if answered else 0,
                    orjson.loads(lines) if answered and lines else [],
                    int(cost),
                    table,
                )

    def set_review(self, connection: Any, request_id: str, status: str, review: dict[str, Any]) -> bool:
        row = self.get(connection, request_id)
        if row is None:
            return False
        m = self._mark
        cursor = connection.cursor()
        cursor.execute(
            f"UPDATE ledger SET review_status = {m}, review = {m} WHERE request_id = {m} AND day = {m}",
            (status, orjson.dumps(review).decode(), request_id, row.day),
        )
        return cursor.rowcount == 1

    def spend(self, connection: Any, group_by: Sequence[str], filters: Filters) -> list[SpendGroup]:
        """Finished requests only: a request still running has been told no cost yet."""
        cursor = connection.cursor()
        if not self._rolled_up:
            self._rolled_up = self.schema.has(cursor, "ledger_daily")
        archived = self.archived_months(cursor) if self._rolled_up else set()
        return spend(cursor, group_by, filters, mark=self._mark, rolled_up=self._rolled_up, archived=archived)

    def archived_months(self, cursor: Any) -> set[str]:
        cursor.execute("SELECT month FROM ledger_archives")
        return {month for (month,) in cursor.fetchall()}

    def in_flight(self, connection: Any, filters: Filters) -> int:
        """Requests the filters match that are still running (no answer yet, so no spend)."""
        clause, params = where(replace(filters, status="started"), alias="", mark=self._mark)
        cursor = connection.cursor()
        cursor.execute(f"SELECT COUNT(*) FROM ledger WHERE {clause}", params)
        return int(cursor.fetchone()[0])

    def _select(
        self, connection: Any, clause: str, params: Sequence[Any], *, order: str = "created_at", limit: int = 0
    ) -> list[LedgerRow]:
        cursor = connection.cursor()
        suffix = f" LIMIT {int(limit)}" if limit else ""
        cursor.execute(f"SELECT {', '.join(ROW_COLUMNS)} FROM ledger WHERE {clause} ORDER BY {order}{suffix}", params)
        rows = [self._row(record) for record in cursor.fetchall()]
        if rows:
            self._attach_charges(cursor, rows)
        return rows

    def _row(self, record: Sequence[Any]) -> LedgerRow:
        values = dict(zip(ROW_COLUMNS, record, strict=True))
        for name in JSON:
            values[name] = orjson.loads(values[name]) if values[name] is not None else None
        values["file_urls"] = values["file_urls"] or []
        values["attempts"] = values["attempts"] or []
        values["cost_lines"] = values["cost_lines"] or []
        values["simulated"] = bool(values["simulated"])
        return LedgerRow(**values)

    def _attach_charges(self, cursor: Any, rows: list[LedgerRow]) -> None:
        """Their charges, looked for in the rows' own days (their months' partitions)."""
        by_id = {row.request_id: row for row in rows}
        days = sorted({row.day for row in rows})
        ids, in_days = ", ".join([self._mark] * len(by_id)), ", ".join([self._mark] * len(days))
        cursor.execute(
            f"SELECT request_id, {', '.join(CHARGE_COLUMNS)} FROM ledger_charges "
            f"WHERE request_id IN ({ids}) AND day IN ({in_days}) ORDER BY request_id, seq",
            [*by_id, *days],
        )
        for request_id, *values in cursor.fetchall():
            by_id[request_id].charges.append(Charge(**dict(zip(CHARGE_COLUMNS, values, strict=True))))
