"""Spend grouped by fields: from the daily rollup for whole days, from the rows only
for the part of a day at either end of a period that starts or ends mid-day. The
parts do not overlap in time, so each request is counted in exactly one of them,
and their sums add up to what the rows alone would say.

Finished requests only: a request still running has been told no cost yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from . import rollup
from .filters import Filters, Refused, days, next_day, where, whole_day

# Fields a spend report may group by, and the SQL that yields each from the rows:
# charge-level fields come from the charge, so a billed failed attempt counts under
# its own provider. The rollup holds each under the same name.
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
assert set(GROUPS) == {"day", *rollup.DIMENSIONS}, "every field a report groups by is in the rollup"
_SUMS = (
    "COUNT(DISTINCT l.request_id)",
    "COALESCE(SUM(c.cost_nanousd), 0)",
    "COALESCE(SUM(COALESCE(c.list_cost_nanousd, c.cost_nanousd)), 0)",
)
_ALL_DAYS = ("0000-01-01", "9999-12-31")


@dataclass(frozen=True, slots=True)
class SpendGroup:
    key: dict[str, Any]
    requests: int
    cost_nanousd: int
    list_cost_nanousd: int = 0  # the same usage at list price, as `Charge.listed_nanousd` counts it


class ArchivedPeriod(Refused):
    """A period that starts or ends mid-day in a month archived: its rows are gone, and the rollup has whole days."""


def spend(
    cursor: Any, group_by: Sequence[str], filters: Filters, *, mark: str, rolled_up: bool, archived: set[str]
) -> list[SpendGroup]:
    """`rolled_up`: the ledger has its rollup (a ledger an older Tollgate made gains it at its next start)."""
    if not (rolled_up and filters.by_time_only):
        return _sorted(_from_rows(cursor, group_by, filters, mark), group_by, nulls_last=mark == "%s")
    first = whole_day(filters.since) if filters.since else _ALL_DAYS[0]
    end = whole_day(filters.until) if filters.until else _ALL_DAYS[1]
    parts: list[tuple[str, Filters]] = []  # (the day, the part of it) read from the rows
    if first is None:  # the period starts mid-day: the rest of that day comes from the rows
        day, first = filters.since[:10], next_day(filters.since[:10])
        parts.append((day, replace(filters, until=min(filters.until or first, first))))
    if end is None:  # ... or ends mid-day, on a later day than that
        end = filters.until[:10]
        if end >= first:
            parts.append((end, replace(filters, since=end)))
    for day, _ in parts:
        if day[:7] in archived:
            raise ArchivedPeriod(
                f"{day[:7]} is archived: the ledger keeps its spend per whole day, not its rows. Give the period's "
                "bounds in that month as dates (YYYY-MM-DD)."
            )
    totals: dict[tuple, list[int]] = {}
    sources = [(rollup.spend_sql(group_by, mark), [first, end])] if first < end else []
    sources += [_rows_sql(group_by, part, mark) for _, part in parts]
    for sql, params in sources:
        cursor.execute(sql, params)
        for record in cursor.fetchall():
            key = tuple(record[: len(group_by)])
            sums = totals.setdefault(key, [0, 0, 0])
            for index, value in enumerate(record[len(group_by) :]):
                sums[index] += int(value)
    if not group_by and not totals:
        totals[()] = [0, 0, 0]
    groups = [_group(group_by, key, *sums) for key, sums in totals.items()]
    return _sorted(groups, group_by, nulls_last=mark == "%s")


def _from_rows(cursor: Any, group_by: Sequence[str], filters: Filters, mark: str) -> list[SpendGroup]:
    sql, params = _rows_sql(group_by, filters, mark)
    cursor.execute(sql, params)
    return [_group(group_by, record[: len(group_by)], *record[len(group_by) :]) for record in cursor.fetchall()]


def _rows_sql(group_by: Sequence[str], filters: Filters, mark: str) -> tuple[str, list[Any]]:
    selected = [f"{GROUPS[name]} AS {name}" for name in group_by]
    clause, params = where(filters, alias="l.", mark=mark)
    charge_days, day_params = days(filters, alias="c.", mark=mark)
    group = f" GROUP BY {', '.join(GROUPS[name] for name in group_by)}" if group_by else ""
    sql = (
        f"SELECT {', '.join([*selected, *_SUMS])} FROM ledger l LEFT JOIN ledger_charges c "
        f"ON c.request_id = l.request_id AND c.day = l.day{charge_days} "
        f"WHERE {clause} AND l.status <> 'started'{group}"
    )
    return sql, [*day_params, *params]


def _group(group_by: Sequence[str], key: Sequence[Any], requests: Any, cost: Any, listed: Any) -> SpendGroup:
    named = dict(zip(group_by, key, strict=True))
    if "simulated" in named:
        named["simulated"] = bool(named["simulated"])
    return SpendGroup(named, int(requests), int(cost), int(listed))


def _sorted(groups: list[SpendGroup], group_by: Sequence[str], *, nulls_last: bool) -> list[SpendGroup]:
    """In the order of the grouped fields; a missing value where each database puts it."""

    def order(group: SpendGroup) -> tuple:
        missing = (1 if nulls_last else -1, "")
        return tuple(missing if group.key[name] is None else (0, group.key[name]) for name in group_by)

    return sorted(groups, key=order)
