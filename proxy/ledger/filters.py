"""Which rows a read asks for, and the SQL that selects them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


class Refused(ValueError):
    """A read or a change the ledger will not make as asked: the asking is at fault, not the
    database, and the message says what to change."""


@dataclass(frozen=True, slots=True)
class Filters:
    since: str | None = None  # created_at bounds, ISO 8601 (a date works)
    until: str | None = None
    route: str | None = None
    provider: str | None = None
    status: str | None = None
    review_status: str | None = None
    purpose: str | None = None

    @property
    def by_time_only(self) -> bool:
        return all(getattr(self, name) is None for name in ("route", "provider", "status", "review_status", "purpose"))


def where(filters: Filters, *, alias: str, mark: str) -> tuple[str, list[Any]]:
    """The WHERE clause for `filters`, and its parameters. The time bounds are said of
    `day` too: `day` is what the tables are partitioned on, so PostgreSQL reads only the
    months asked for."""
    clauses, params = ["1 = 1"], []
    if filters.since:
        clauses.append(f"{alias}created_at >= {mark} AND {alias}day >= {mark}")
        params += [filters.since, filters.since[:10]]
    if filters.until:
        clauses.append(f"{alias}created_at < {mark} AND {alias}day <= {mark}")
        params += [filters.until, filters.until[:10]]
    for name in ("route", "provider", "status", "review_status", "purpose"):
        value = getattr(filters, name)
        if value is not None:
            clauses.append(f"{alias}{name} = {mark}")
            params.append(value)
    return " AND ".join(clauses), params


def days(filters: Filters, *, alias: str, mark: str) -> tuple[str, list[Any]]:
    """The time bounds said of `day` alone: for a table joined to the rows (their charges),
    whose partitions PostgreSQL does not leave out by the rows' bounds."""
    clause, params = "", []
    if filters.since:
        clause, params = f" AND {alias}day >= {mark}", [filters.since[:10]]
    if filters.until:
        clause, params = f"{clause} AND {alias}day <= {mark}", [*params, filters.until[:10]]
    return clause, params


def whole_day(bound: str) -> str | None:
    """The day a bound is the very start of ('2026-11-01', or '2026-11-01T00:00:00Z'), else None."""
    day = bound[:10]
    try:
        dt.date.fromisoformat(day)
    except ValueError:
        return None
    rest = bound[10:].rstrip("Z").removeprefix("T")
    return day if not rest.strip("0:.") else None


def made_at(request_id: str) -> dt.datetime | None:
    """When the proxy made a request id: its ids start with the time, in milliseconds
    (proxy/http/ids.py). None for an id that does not say."""
    if not request_id.startswith("req_"):
        return None
    try:
        return dt.datetime.fromtimestamp(int(request_id[4:16], 16) / 1000, dt.UTC)
    except (ValueError, OverflowError, OSError):
        return None


def days_of_id(request_id: str) -> tuple[str, str] | None:
    """The days a request's row can be in, from its id: the row's `created_at` follows the
    id by a moment, at most into the next day."""
    made = made_at(request_id)
    if made is None:
        return None
    day = made.date().isoformat()
    return day, next_day(day)


def next_day(day: str) -> str:
    return (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
