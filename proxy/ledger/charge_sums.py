"""A period's charges summed per day in SQL, for exports that sum a day's charges (the
FOCUS export's daily lines). A day's charges are grouped by every field such a line
reads of them and their rows; the money and the priced quantities are summed, and a
field unique to a request (its ids) is kept only where the group is one request's.
A month then reaches Python as a few thousand sums a day rather than each row.

A day that holds charges from before their priced quantity was kept (an upgraded
ledger) is read row by row instead: the same lines, more slowly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

from .filters import Filters, next_day, where
from .row import Charge, LedgerRow

if TYPE_CHECKING:
    from .sql import SqlLedger

_ROW = (
    "surface",
    "status",
    "route",
    "route_owner",
    "team",
    "key_id",
    "upstream_model",
    "images",
    "size",
    "quality",
    "prompt_version",
    "review_status",
    "simulated",
)
_CHARGE = ("provider", "billing_owner", "price_table", "price_source", "cost_basis", "list_price_table", "priced_unit")
_SUMS = (
    "COUNT(*)",
    "SUM(c.cost_nanousd)",
    "SUM(COALESCE(c.list_cost_nanousd, c.cost_nanousd))",
    "SUM(c.priced_quantity)",
    "MIN(l.request_id)",
    "MAX(l.request_id)",
    "COUNT(l.upstream_request_id)",
    "MIN(l.upstream_request_id)",
    "MAX(l.upstream_request_id)",
)
_GROUPED = (*(f"l.{name}" for name in _ROW), *(f"c.{name}" for name in _CHARGE))


@dataclass(frozen=True, slots=True)
class ChargeSum:
    row: LedgerRow  # what the summed charges' rows share: an id only where they are one request's
    charge: Charge  # their payer and table, with the cost and the list cost summed
    quantity: int
    unit: str
    charges: int


@dataclass(frozen=True, slots=True)
class DayOfCharges:
    day: str
    sums: list[ChargeSum] | None  # None: read `rows` (charges from before their priced quantity was kept)
    rows: Iterator[LedgerRow] | None = None


def days_of_charges(sql: SqlLedger, connection: Any, filters: Filters) -> Iterator[DayOfCharges]:
    """The period's days, oldest first, each summed (or its rows, see above)."""
    if sql.postgres:  # a day's tens of thousands of charges are grouped in memory, not in files on disk
        connection.cursor().execute("SET LOCAL work_mem = '64MB'")
    for day in _days(sql, connection, filters):
        until = next_day(day) if filters.until is None else min(filters.until, next_day(day))
        bounds = replace(filters, since=max(filters.since or day, day), until=until)
        sums = _sums(sql, connection, day, bounds)
        if sums is None:
            yield DayOfCharges(day, None, sql.each(connection, bounds))
        else:
            yield DayOfCharges(day, sums)


def _days(sql: SqlLedger, connection: Any, filters: Filters) -> Iterator[str]:
    first, end = filters.since, filters.until
    if first is None or end is None:  # the ledger's own first or last day bounds the period
        clause, params = where(filters, alias="", mark=sql.mark)
        cursor = connection.cursor()
        cursor.execute(f"SELECT MIN(created_at), MAX(created_at) FROM ledger WHERE {clause}", params)
        oldest, newest = cursor.fetchone()
        if oldest is None:
            return
        first, end = first or oldest, end or next_day(newest[:10])
    day = first[:10]
    while day < end:
        yield day
        day = next_day(day)


def _sums(sql: SqlLedger, connection: Any, day: str, bounds: Filters) -> list[ChargeSum] | None:
    clause, params = where(bounds, alias="l.", mark=sql.mark)
    grouped = ", ".join(_GROUPED)
    cursor = connection.cursor()
    # In the order each group's first charge comes when the rows are read oldest first (`each`),
    # so that the lines come in the order they would from the rows.
    first = "MIN(l.created_at || ' ' || l.request_id || ' ' || c.seq)"
    cursor.execute(
        f"SELECT {grouped}, {', '.join(_SUMS)} FROM ledger l JOIN ledger_charges c ON c.request_id = l.request_id "
        f"AND c.day = l.day AND c.day = {sql.mark} WHERE {clause} GROUP BY {grouped} ORDER BY {first}",
        [day, *params],
    )
    sums = []
    for record in cursor.fetchall():
        row = dict(zip(_ROW, record, strict=False))
        charge = dict(zip(_CHARGE, record[len(_ROW) :], strict=False))
        count, cost, listed, quantity, first, last, upstreams, first_up, last_up = record[len(_GROUPED) :]
        if charge["priced_unit"] is None:
            return None
        row["request_id"] = first if first == last else None
        row["upstream_request_id"] = first_up if upstreams == count and first_up == last_up else None
        summed = Charge(
            charge["provider"],
            charge["billing_owner"],
            charge["price_table"],
            charge["price_source"],
            int(cost),
            charge["cost_basis"],
            int(listed),
            charge["list_price_table"],
        )
        shared = LedgerRow(**cast(dict, row), created_at=f"{day}T00:00:00.000000Z")
        shared.simulated = bool(shared.simulated)
        sums.append(ChargeSum(shared, summed, int(quantity), charge["priced_unit"], int(count)))
    return sums
