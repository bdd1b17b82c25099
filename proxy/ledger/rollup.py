"""The daily rollup, `ledger_daily`: spend per day and per every field a spend report
groups by. The writer keeps it in the same transaction as the rows it sums, so a
report of a month reads a few thousand sums rather than a million rows, and a sum
never disagrees with its rows, nor lags behind them: what the read barrier lets a
read see of the rows, it sees in the rollup too.

A finished request adds 1 request and its charges' costs to the group its charges
fall in, as a report grouped by every field at once counts it. A request whose
charges fall in several groups (a failed attempt billed by another provider) is
kept per request in each (its id in the row): a report grouped by fewer fields
counts it once where those groups merge (COUNT DISTINCT), as the rows would. Such
requests are rare, so the rollup stays small.

Rows change (started → finished, a replayed snapshot, an abandoned request): the
writer reads what the batch's rows were before, and applies the difference. The
rollup keeps the months `tollgate ledger archive` took away, so totals stay whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

try:  # hashlib's own blake2b, without hashlib: it loads OpenSSL, ~3.5 MB of the writer process's memory
    from _blake2 import blake2b
except ImportError:  # an interpreter without CPython's module
    from hashlib import blake2b

# The fields a report groups by, besides `day`, in the rollup's column order.
DIMENSIONS = (
    "route",
    "team",
    "key_id",
    "model",
    "surface",
    "status",
    "purpose",
    "simulated",
    "billing_owner",
    "price_table",
    "price_source",
    "provider",
)
# Those a charge sets for itself; where it says nothing (NULL), its row's value stands.
CHARGE_DIMENSIONS = ("billing_owner", "price_table", "price_source", "provider")
_ROW_DIMENSIONS = DIMENSIONS[: -len(CHARGE_DIMENSIONS)]
_COLUMNS = ("day", "bucket", *DIMENSIONS, "request_id", "requests", "cost_nanousd", "list_cost_nanousd")
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ledger_daily (day TEXT NOT NULL, bucket TEXT NOT NULL, route TEXT, team TEXT, "
    "key_id TEXT, model TEXT, surface TEXT, status TEXT, purpose TEXT, simulated BOOLEAN NOT NULL, "
    "billing_owner TEXT, price_table TEXT, price_source TEXT, provider TEXT, request_id TEXT, "
    "requests BIGINT NOT NULL, cost_nanousd BIGINT NOT NULL, list_cost_nanousd BIGINT NOT NULL, "
    "PRIMARY KEY (day, bucket))"
)
# COUNT DISTINCT: a request kept per group (its id set) counts once where its groups merge.
SUMS = (
    "COALESCE(SUM(CASE WHEN request_id IS NULL THEN requests ELSE 0 END), 0) + COUNT(DISTINCT request_id)",
    "COALESCE(SUM(cost_nanousd), 0)",
    "COALESCE(SUM(list_cost_nanousd), 0)",
)

Key = tuple[Any, ...]  # (day, *DIMENSIONS, request_id or None)
Sums = list[int]  # [requests, cost_nanousd, list_cost_nanousd]


def contributions(record: Mapping[str, Any]) -> dict[Key, Sums]:
    """What a row, as the ledger holds it (a journal record, or read back with its
    charges), adds to the rollup: nothing while it is still running."""
    if record["status"] == "started":
        return {}
    route = record["route"]
    model = record["upstream_model"] if record["upstream_model"] is not None else route
    row = (route, record["team"], record["key_id"], model, record["surface"], record["status"])
    row = (*row, record.get("purpose"), bool(record["simulated"]))
    assert len(row) == len(_ROW_DIMENSIONS)
    groups: dict[tuple[Any, ...], Sums] = {}
    for charge in record["charges"] or [None]:  # a request nobody billed still counts, at no cost
        if charge is None:
            payer, cost, listed = tuple(record[name] for name in CHARGE_DIMENSIONS), 0, 0
        else:
            payer = tuple(_either(charge.get(name), record[name]) for name in CHARGE_DIMENSIONS)
            cost = charge["cost_nanousd"]
            listed = _either(charge.get("list_cost_nanousd"), cost)
        sums = groups.setdefault(payer, [0, 0, 0])
        sums[1] += cost
        sums[2] += listed
    request_id = record["request_id"] if len(groups) > 1 else None
    day = record["created_at"][:10]
    return {(day, *row, *payer, request_id): [1, cost, listed] for payer, (_, cost, listed) in groups.items()}


def difference(before: Iterable[Mapping[str, Any]], after: Iterable[Mapping[str, Any]]) -> dict[Key, Sums]:
    """What turning the rows `before` into the rows `after` changes in the rollup."""
    delta: dict[Key, Sums] = {}
    for sign, records in ((-1, before), (1, after)):
        for record in records:
            for key, sums in contributions(record).items():
                total = delta.setdefault(key, [0, 0, 0])
                for index, value in enumerate(sums):
                    total[index] += sign * value
    return {key: sums for key, sums in delta.items() if any(sums)}


def apply(cursor: Any, delta: Mapping[Key, Sums], *, mark: str) -> None:
    """Add `delta` to the rollup. Sorted, so that two writers lock its rows in the same order."""
    if not delta:
        return
    rows = sorted((key[0], bucket(key), *key[1:], *sums) for key, sums in delta.items())
    marks = ", ".join([mark] * len(_COLUMNS))
    cursor.executemany(
        f"INSERT INTO ledger_daily ({', '.join(_COLUMNS)}) VALUES ({marks}) ON CONFLICT (day, bucket) DO UPDATE SET "
        "requests = ledger_daily.requests + excluded.requests, "
        "cost_nanousd = ledger_daily.cost_nanousd + excluded.cost_nanousd, "
        "list_cost_nanousd = ledger_daily.list_cost_nanousd + excluded.list_cost_nanousd",
        rows,
    )
    # A group whose last request moved elsewhere is removed: COUNT DISTINCT must not see its id.
    emptied = [(row[0], row[1]) for row in rows if row[-3] < 0]
    if emptied:
        cursor.executemany(f"DELETE FROM ledger_daily WHERE day = {mark} AND bucket = {mark} AND requests = 0", emptied)


def bucket(key: Key) -> str:
    """The group's key within its day: a digest of its fields, the same in both dialects."""
    return blake2b(orjson.dumps(key[1:]), digest_size=16).hexdigest()


def spend_sql(group_by: Sequence[str], mark: str) -> str:
    """Spend per `group_by` over whole days [`mark`, `mark`): the rollup's columns bear the groups' names."""
    selected = ", ".join([*group_by, *SUMS])
    group = f" GROUP BY {', '.join(group_by)}" if group_by else ""
    return f"SELECT {selected} FROM ledger_daily WHERE day >= {mark} AND day < {mark}{group}"


def _either(value: Any, otherwise: Any) -> Any:
    return otherwise if value is None else value
