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
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import orjson

from .barrier import SCHEMA as BARRIER_SCHEMA
from .row import Charge, LedgerRow

_JSON = ("file_urls", "attempts", "cost_lines", "review")
_ROW_COLUMNS = tuple(f.name for f in fields(LedgerRow) if f.name != "charges")
_COLUMNS = (*_ROW_COLUMNS, "day")
_JSON_INDEXES = tuple(_ROW_COLUMNS.index(name) for name in _JSON)
_KEPT_ON_UPDATE = ("request_id", "created_at", "review_status", "review")
_CHARGE_COLUMNS = tuple(f.name for f in fields(Charge))
_ALL_CHARGE_COLUMNS = ("request_id", "seq", *_CHARGE_COLUMNS)
_TYPES = {
    "created_at": "TEXT NOT NULL",
    "day": "TEXT NOT NULL",
    "surface": "TEXT NOT NULL",
    "status": "TEXT NOT NULL",
    "http_status": "INTEGER",
    "cost_nanousd": "BIGINT",
    "estimated_cost_nanousd": "BIGINT",
    "input_text_tokens": "BIGINT",
    "input_image_tokens": "BIGINT",
    "cached_input_tokens": "BIGINT",
    "output_text_tokens": "BIGINT",
    "output_image_tokens": "BIGINT",
    "images": "INTEGER",
    "latency_ms": "DOUBLE PRECISION",
    "simulated": "BOOLEAN NOT NULL",
    "list_cost_nanousd": "BIGINT",
}
# Fields a spend report may group by, and the SQL that yields each: charge-level
# fields come from the charge, so a billed failed attempt counts under its own provider.
GROUPS = {
    "billing_owner": "COALESCE(c.billing_owner, l.billing_owner)",
    "price_table": "COALESCE(c.price_table, l.price_table)",
    "price_source": "COALESCE(c.price_source, l.price_source)",
    "provider": "COALESCE(c.provider, l.provider)",
    "route": "l.route",
    "team": "l.team",
    "key_id": "l.key_id",
    "model": "COALESCE(l.upstream_model, l.route)",
    "day": "l.day",
    "surface": "l.surface",
    "status": "l.status",
    "purpose": "l.purpose",
    "simulated": "l.simulated",
}
_SPEND_SUMS = ("COALESCE(SUM(c.cost_nanousd), 0)", "COALESCE(SUM(COALESCE(c.list_cost_nanousd, c.cost_nanousd)), 0)")


@dataclass(frozen=True, slots=True)
class Filters:
    since: str | None = None  # created_at bounds, ISO 8601 (a date works)
    until: str | None = None
    route: str | None = None
    provider: str | None = None
    status: str | None = None
    review_status: str | None = None
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class SpendGroup:
    key: dict[str, Any]
    requests: int
    cost_nanousd: int
    list_cost_nanousd: int = 0  # the same usage at list price, as `Charge.listed_nanousd` counts it


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


class SqlLedger:
    """The ledger tables, reached through a DB-API connection factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith(("postgresql://", "postgres://"))
        self._mark = "%s" if self.postgres else "?"

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

    # --- schema and writes (the writer thread) --------------------------------------------

    def create_schema(self, connection: Any) -> None:
        columns = ", ".join(f"{name} {_TYPES.get(name, 'TEXT')}" for name in _COLUMNS if name != "request_id")
        statements = [
            f"CREATE TABLE IF NOT EXISTS ledger (request_id TEXT PRIMARY KEY, {columns})",
            "CREATE INDEX IF NOT EXISTS ledger_created_at ON ledger (created_at)",
            "CREATE INDEX IF NOT EXISTS ledger_status_owner ON ledger (status, owner)",
            "CREATE INDEX IF NOT EXISTS ledger_route ON ledger (route)",
            "CREATE TABLE IF NOT EXISTS ledger_charges (request_id TEXT NOT NULL, seq INTEGER NOT NULL, "
            "provider TEXT, billing_owner TEXT, price_table TEXT, price_source TEXT, "
            "cost_nanousd BIGINT NOT NULL, cost_basis TEXT, list_cost_nanousd BIGINT, list_price_table TEXT, "
            "PRIMARY KEY (request_id, seq))",
            *BARRIER_SCHEMA,
        ]
        cursor = connection.cursor()
        for statement in statements:
            cursor.execute(statement)
        self._add_missing_columns(cursor, "ledger", _COLUMNS)
        self._add_missing_columns(cursor, "ledger_charges", _CHARGE_COLUMNS)

    def _add_missing_columns(self, cursor: Any, table: str, columns: Sequence[str]) -> None:
        """A ledger made by an older Tollgate gains the row's newer fields (NULL in old rows)."""
        cursor.execute(f"SELECT * FROM {table} LIMIT 0")
        present = {column[0] for column in cursor.description}
        for name in columns:
            if name not in present:
                kind = _TYPES.get(name, "TEXT").replace(" NOT NULL", "")  # old rows have no value
                cursor.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    def upsert(self, connection: Any, records: Sequence[Mapping[str, Any]]) -> None:
        """Write rows given as records (`LedgerRow.record()`, or a journal line parsed):
        the writer goes from journal to SQL without building objects on the way."""
        records = list({record["request_id"]: record for record in records}.values())  # the last snapshot wins
        cursor = connection.cursor()
        rows = [self._values(record) for record in records]
        final = [record for record in records if record["status"] != "started"]
        # .get: a journal written by an older Tollgate has charges without the newer fields
        charges = [
            (record["request_id"], seq, *(charge.get(name) for name in _CHARGE_COLUMNS))
            for record in final
            for seq, charge in enumerate(record["charges"])
        ]
        finished = [(record["request_id"],) for record in final]
        if self.postgres:
            self._copy_upsert(cursor, rows, finished, charges)
            return
        cursor.executemany(self._upsert_sql("VALUES (" + ", ".join(["?"] * len(_COLUMNS)) + ")"), rows)
        cursor.executemany("DELETE FROM ledger_charges WHERE request_id = ?", finished)
        cursor.executemany(
            f"INSERT INTO ledger_charges ({', '.join(_ALL_CHARGE_COLUMNS)}) "
            f"VALUES ({', '.join(['?'] * len(_ALL_CHARGE_COLUMNS))})",
            charges,
        )

    def _copy_upsert(self, cursor: Any, rows: list[tuple], finished: list[tuple], charges: list[tuple]) -> None:
        """PostgreSQL: a batch goes in by COPY, several times faster than a statement per
        row, then into the ledger with one upsert that keeps its rules (see `_upsert_sql`)."""
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS ledger_incoming (LIKE ledger INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY ledger_incoming ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(self._upsert_sql(f"SELECT {', '.join(_COLUMNS)} FROM ledger_incoming"))
        # One statement a row, pipelined: a single `= ANY(array)` is planned as a scan of the whole
        # table until the table has statistics, which made each batch slower than the last.
        cursor.executemany("DELETE FROM ledger_charges WHERE request_id = %s", finished)
        if charges:
            with cursor.copy(f"COPY ledger_charges ({', '.join(_ALL_CHARGE_COLUMNS)}) FROM STDIN") as copy:
                for charge in charges:
                    copy.write_row(charge)

    @staticmethod
    def _upsert_sql(source: str) -> str:
        """Insert from `source` (VALUES or a SELECT); a row already there is updated, but
        never moved backwards to started, nor its review undone."""
        updates = ", ".join(f"{name} = excluded.{name}" for name in _COLUMNS if name not in _KEPT_ON_UPDATE)
        return (
            f"INSERT INTO ledger ({', '.join(_COLUMNS)}) {source} "
            f"ON CONFLICT (request_id) DO UPDATE SET {updates}, "
            "review_status = CASE WHEN ledger.review_status IN ('approved', 'rejected') "
            "THEN ledger.review_status ELSE excluded.review_status END, "
            "review = CASE WHEN ledger.review_status IN ('approved', 'rejected') "
            "THEN ledger.review ELSE excluded.review END "
            "WHERE NOT (ledger.status <> 'started' AND excluded.status = 'started')"
        )

    def _values(self, record: Mapping[str, Any]) -> tuple:
        values = [record[name] for name in _ROW_COLUMNS]
        for index in _JSON_INDEXES:
            if values[index] is not None:
                values[index] = orjson.dumps(values[index]).decode()
        values.append(record["created_at"][:10])  # day
        return tuple(values)

    # --- reads (admin API, reports, recovery) ---------------------------------------------

    def get(self, connection: Any, request_id: str) -> LedgerRow | None:
        rows = self._select(connection, f"request_id = {self._mark}", [request_id])
        return rows[0] if rows else None

    def started_by(self, connection: Any, owner: str) -> list[LedgerRow]:
        return self._select(connection, f"status = 'started' AND owner = {self._mark}", [owner])

    def find(self, connection: Any, filters: Filters, limit: int) -> list[LedgerRow]:
        where, params = self._where(filters, alias="")
        return self._select(connection, where, params, order="created_at DESC", limit=limit)

    def each(self, connection: Any, filters: Filters, *, batch: int = 1000) -> Iterator[LedgerRow]:
        """Every row the filters match, oldest first, with its charges: read a batch at a time,
        so an export of a month never holds the month in memory."""
        where, params = self._where(filters, alias="")
        cursor = connection.cursor()
        cursor.execute(
            f"SELECT {', '.join(_ROW_COLUMNS)} FROM ledger WHERE {where} ORDER BY created_at, request_id", params
        )
        charges = connection.cursor()
        while records := cursor.fetchmany(batch):
            rows = [self._row(record) for record in records]
            self._attach_charges(charges, rows)
            yield from rows

    def billed_by(self, connection: Any, provider: str, filters: Filters) -> Iterator[BilledRow]:
        """Every row `provider` has a charge on, with the sum of its charges there."""
        where, params = self._where(filters, alias="l.")
        cursor = connection.cursor()
        cursor.execute(
            "SELECT l.day, COALESCE(l.upstream_model, l.route), l.status, l.cost_basis, l.provider, l.images, "
            "l.cost_lines, c.cost, c.price_table FROM ledger l JOIN (SELECT request_id, SUM(cost_nanousd) AS cost, "
            f"MAX(price_table) AS price_table FROM ledger_charges WHERE provider = {self._mark} GROUP BY request_id) c "
            f"ON c.request_id = l.request_id WHERE {where}",
            [provider, *params],
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
        cursor = connection.cursor()
        cursor.execute(
            f"UPDATE ledger SET review_status = {self._mark}, review = {self._mark} WHERE request_id = {self._mark}",
            (status, orjson.dumps(review).decode(), request_id),
        )
        return cursor.rowcount == 1

    def spend(self, connection: Any, group_by: Sequence[str], filters: Filters) -> list[SpendGroup]:
        """Finished requests only: a request still running has been told no cost yet."""
        selected = [f"{GROUPS[name]} AS {name}" for name in group_by]
        where, params = self._where(filters, alias="l.")
        where += " AND l.status <> 'started'"
        group = f"GROUP BY {', '.join(GROUPS[name] for name in group_by)} ORDER BY 1" if group_by else ""
        sql = (
            f"SELECT {', '.join([*selected, 'COUNT(DISTINCT l.request_id)', *_SPEND_SUMS])} "
            f"FROM ledger l LEFT JOIN ledger_charges c ON c.request_id = l.request_id WHERE {where} {group}"
        )
        cursor = connection.cursor()
        cursor.execute(sql, params)
        groups = []
        for record in cursor.fetchall():
            key = dict(zip(group_by, record[: len(group_by)], strict=True))
            if "simulated" in key:
                key["simulated"] = bool(key["simulated"])
            groups.append(SpendGroup(key, int(record[-3]), int(record[-2]), int(record[-1])))
        return groups

    def in_flight(self, connection: Any, filters: Filters) -> int:
        """Requests the filters match that are still running (no answer yet, so no spend)."""
        where, params = self._where(replace(filters, status="started"), alias="")
        cursor = connection.cursor()
        cursor.execute(f"SELECT COUNT(*) FROM ledger WHERE {where}", params)
        return int(cursor.fetchone()[0])

    def _where(self, filters: Filters, *, alias: str) -> tuple[str, list[Any]]:
        clauses, params = ["1 = 1"], []
        if filters.since:
            clauses.append(f"{alias}created_at >= {self._mark}")
            params.append(filters.since)
        if filters.until:
            clauses.append(f"{alias}created_at < {self._mark}")
            params.append(filters.until)
        for name in ("route", "provider", "status", "review_status", "purpose"):
            value = getattr(filters, name)
            if value is not None:
                clauses.append(f"{alias}{name} = {self._mark}")
                params.append(value)
        return " AND ".join(clauses), params

    def _select(
        self, connection: Any, where: str, params: Sequence[Any], *, order: str = "created_at", limit: int | None = None
    ) -> list[LedgerRow]:
        cursor = connection.cursor()
        suffix = f" LIMIT {int(limit)}" if limit else ""
        cursor.execute(f"SELECT {', '.join(_ROW_COLUMNS)} FROM ledger WHERE {where} ORDER BY {order}{suffix}", params)
        rows = [self._row(record) for record in cursor.fetchall()]
        if rows:
            self._attach_charges(cursor, rows)
        return rows

    def _row(self, record: Sequence[Any]) -> LedgerRow:
        values = dict(zip(_ROW_COLUMNS, record, strict=True))
        for name in _JSON:
            values[name] = orjson.loads(values[name]) if values[name] is not None else None
        values["file_urls"] = values["file_urls"] or []
        values["attempts"] = values["attempts"] or []
        values["cost_lines"] = values["cost_lines"] or []
        values["simulated"] = bool(values["simulated"])
        return LedgerRow(**values)

    def _attach_charges(self, cursor: Any, rows: list[LedgerRow]) -> None:
        by_id = {row.request_id: row for row in rows}
        marks = ", ".join([self._mark] * len(by_id))
        cursor.execute(
            f"SELECT request_id, {', '.join(_CHARGE_COLUMNS)} FROM ledger_charges "
            f"WHERE request_id IN ({marks}) ORDER BY request_id, seq",
            list(by_id),
        )
        for request_id, *values in cursor.fetchall():
            by_id[request_id].charges.append(Charge(**dict(zip(_CHARGE_COLUMNS, values, strict=True))))
