"""Rows read back as the rollup counts them: the fields it groups by and the charges,
as records shaped like the journal's. The writer reads what a batch's rows were
before it changes them; an upgrade sums the rollup of a ledger that had none."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

_FIELDS = (
    "request_id",
    "created_at",
    "day",
    "status",
    "route",
    "team",
    "key_id",
    "upstream_model",
    "surface",
    "purpose",
    "simulated",
    "billing_owner",
    "price_table",
    "price_source",
    "provider",
)
_CHARGE_FIELDS = ("provider", "billing_owner", "price_table", "price_source", "cost_nanousd", "list_cost_nanousd")
_CHUNK = 500  # SQLite: ids per IN (...), well under its limit on parameters


def finished_before(cursor: Any, postgres: bool, records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The rows of `records` that the ledger already holds as finished, by request id.
    Usually none: a request's finished snapshot comes once, after its started one."""
    if not records:
        return {}
    ids = [record["request_id"] for record in records]
    days = {record["created_at"][:10] for record in records}
    found: dict[str, dict[str, Any]] = {}
    for clause, params in _by_id(postgres, ids, days):
        cursor.execute(f"SELECT {', '.join(_FIELDS)} FROM ledger WHERE {clause} AND status <> 'started'", params)
        for values in cursor.fetchall():
            found[values[0]] = dict(zip(_FIELDS, values, strict=True))
    _attach_charges(cursor, postgres, found)
    return found


def finished_rows(connection: Any, postgres: bool, *, batch: int) -> Iterator[list[dict[str, Any]]]:
    """Every finished row with its charges, a batch at a time (a server-side cursor on PostgreSQL)."""
    cursor = connection.cursor(name="tollgate_rollup_sum") if postgres else connection.cursor()
    cursor.execute(f"SELECT {', '.join(_FIELDS)} FROM ledger WHERE status <> 'started'")
    charges = connection.cursor()
    while records := cursor.fetchmany(batch):
        rows = {values[0]: dict(zip(_FIELDS, values, strict=True)) for values in records}
        _attach_charges(charges, postgres, rows)
        yield list(rows.values())
    cursor.close()


def _attach_charges(cursor: Any, postgres: bool, rows: dict[str, dict[str, Any]]) -> None:
    for row in rows.values():
        row["charges"] = []
    if not rows:
        return
    for clause, params in _by_id(postgres, list(rows), {row["day"] for row in rows.values()}):
        cursor.execute(
            f"SELECT request_id, {', '.join(_CHARGE_FIELDS)} FROM ledger_charges WHERE {clause} ORDER BY seq", params
        )
        for request_id, *values in cursor.fetchall():
            rows[request_id]["charges"].append(dict(zip(_CHARGE_FIELDS, values, strict=True)))


def _by_id(postgres: bool, ids: list[str], days: set[str]) -> list[tuple[str, list[Any]]]:
    """WHERE clauses that find `ids`. PostgreSQL: by the key (id, day), each id looked for in
    its month's partition only. SQLite: in chunks, under its limit on parameters."""
    if postgres:
        return [("request_id = ANY(%s) AND day = ANY(%s)", [ids, sorted(days)])]
    chunks = (ids[start : start + _CHUNK] for start in range(0, len(ids), _CHUNK))
    return [(f"request_id IN ({', '.join('?' * len(chunk))})", chunk) for chunk in chunks]
