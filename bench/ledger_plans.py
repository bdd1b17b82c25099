"""PostgreSQL's plans for the statements Tollgate runs on a ledger at scale: each case
below is run through the ledger's own code with its statements recorded, and each
statement on the ledger's tables is then run again under EXPLAIN (ANALYZE, BUFFERS).
With them, the size of each index of a month's partition, and what the index Tollgate
used to keep for running requests, (status, owner), would cost and do instead of the
partial one (made in a transaction that is rolled back)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from proxy.ledger import Filters
from proxy.ledger.charge_sums import days_of_charges
from proxy.ledger.partitions import next_month, partition_name
from proxy.ledger.readback import finished_before
from proxy.ledger.sql import SqlLedger

_TABLES = ("ledger", "ledger_charges", "ledger_daily")
_CHOICES = """What the plans below decided:

- **Partitions by month on `day`, and every statement says its days.** A month's report, export or
  archive reads that month's partitions only; a row by id reads one month's primary key (the id
  says its day) where an id that does not say reads every month's, a probe each (compare the two
  plans of a row by id). Charges carry their row's day for the same reason: PostgreSQL prunes no
  partition of a joined table by the other table's bounds.
- **A spend report reads the rollup**: tens of thousands of sums for a month, where the same report
  from the rows joins a million rows to their charges (the table above: seconds against
  milliseconds).
- **The daily export sums a day in SQL**: the day's rows by the `created_at` index, their charges by
  primary key, grouped in memory (`work_mem` raised for that transaction: at 4 MB the sort spilled
  to disk).
- **`(owner) WHERE status = 'started'` instead of `(status, owner)`**: both answer the running rows
  (abandoning a dead writer's, counting those in flight), and the planner takes the partial index
  when both are there; it holds only the running rows, where `(status, owner)` held every row of
  the month (sizes below) and cost every insert an entry.
- **No index on `day`**: within a month's partition `created_at` serves every range, and the
  partition itself is the month."""
_MOST_LINES = 28


class _Recorder:
    """A connection that records what its cursors execute."""

    def __init__(self, connection: Any) -> None:
        self._connection, self.statements = connection, []

    def cursor(self, *args: Any, **kwargs: Any) -> _Cursor:
        return _Cursor(self._connection.cursor(*args, **kwargs), self.statements)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


class _Cursor:
    def __init__(self, cursor: Any, statements: list) -> None:
        self._cursor, self._statements = cursor, statements

    def execute(self, statement: str, params: Any = None) -> Any:
        self._statements.append((statement, params))
        return self._cursor.execute(statement, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._cursor, name, value)


def plans(url: str, month: str) -> str:
    sql = SqlLedger(url)
    period = Filters(since=f"{month}-01", until=f"{next_month(month)}-01")
    day = Filters(since=f"{month}-15", until=f"{month}-16")
    with sql.connect() as connection:
        cursor = connection.cursor()
        cursor.execute("SELECT request_id, created_at FROM ledger WHERE day = %s LIMIT 1000", (f"{month}-15",))
        batch = [{"request_id": found, "created_at": made} for found, made in cursor.fetchall()]
        cases: list[tuple[str, Callable[[Any], Any]]] = [
            ("`/admin/spend` for a month, grouped: from the rollup", lambda c: sql.spend(c, ["billing_owner"], period)),
            (
                "spend for a period that starts mid-day: that day's rest from the rows",
                lambda c: sql.spend(c, ["billing_owner"], Filters(since=f"{month}-15T12:00:00.000000Z")),
            ),
            ("one row by request id, with its charges", lambda c: sql.get(c, batch[500]["request_id"])),
            (
                "one row by an id that says nothing of its day (every month's index is read)",
                lambda c: sql._select(c, "request_id = %s", [batch[500]["request_id"]]),
            ),
            ("requests still running in a month", lambda c: sql.in_flight(c, period)),
            ("a dead writer's running rows, to abandon them", lambda c: sql.started_by(c, "a-dead-writer")),
            ("the daily FOCUS export: a day's charges summed", lambda c: list(days_of_charges(sql, c, day))),
            ("the per-charge export: the first batch of a month's rows", lambda c: next(sql.each(c, period))),
            ("the writer: a batch of 1,000 rows as they were", lambda c: finished_before(c.cursor(), True, batch)),
        ]
        parts = ["### Ledger at scale: query plans", "", __doc__.replace("\n", " ").strip(), "", _CHOICES, ""]
        for title, work in cases:
            recorder = _Recorder(connection)
            work(recorder)
            for statement, params in recorder.statements:
                if any(f" {table} " in f" {statement} " for table in _TABLES):
                    parts += [f"**{title}**", "", "```", _explain(cursor, statement, params), "```", ""]
            connection.rollback()
        parts += _indexes(cursor, month, period)
        connection.rollback()
    return "\n".join(parts)


def _explain(cursor: Any, statement: str, params: Any) -> str:
    cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params)
    lines = [line if len(line) <= 240 else line[:240] + "…" for (line,) in cursor.fetchall()]
    shown = lines[:_MOST_LINES] + (["  …"] if len(lines) > _MOST_LINES + 2 else []) + lines[-2:]
    query = " ".join(statement.split())
    return "\n".join([f"-- {query[:400]}{'…' if len(query) > 400 else ''}", *dict.fromkeys(shown)])


def _indexes(cursor: Any, month: str, period: Filters) -> list[str]:
    """Each index of the month's partition and its size; then (status, owner) beside the partial index."""
    partition = partition_name("ledger", month)
    cursor.execute(
        "SELECT indexrelid::regclass::text, pg_size_pretty(pg_relation_size(indexrelid)) FROM pg_index "
        "WHERE indrelid = %s::regclass ORDER BY 1",
        (partition,),
    )
    sizes = cursor.fetchall()
    cursor.execute(f"CREATE INDEX bench_status_owner ON {partition} (status, owner)")
    cursor.execute("SELECT pg_size_pretty(pg_relation_size('bench_status_owner'))")
    (full,) = cursor.fetchone()
    clause = f"created_at >= '{period.since}' AND created_at < '{period.until}' AND status = 'started'"
    both = _explain(cursor, f"SELECT COUNT(*) FROM {partition} WHERE {clause}", None)
    return [
        f"**The indexes of one month's partition ({partition})**",
        "",
        "| index | size |",
        "| --- | ---: |",
        *(f"| {name} | {size} |" for name, size in sizes),
        f"| (status, owner), which Tollgate kept before | {full} |",
        "",
        "Requests in flight with both indexes there: the planner takes the partial one.",
        "",
        "```",
        both,
        "```",
        "",
    ]
