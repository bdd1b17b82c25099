"""Spend reports: the ledger's spend grouped by fields such as billing owner and
price table, as JSON, CSV or an aligned text table. One code path serves both
`GET /admin/spend` and `tollgate spend`, so the two always print the same figures.

Amounts stay integer nano-dollars until they are written out, and are written
with Decimal: the total is the exact sum of the rows, never a float's rounding.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar

import orjson

from ..errors import InvalidRequest
from ..ledger import GROUPS, Filters, LedgerBehind, SpendGroup, SqlLedger, from_nano
from ..ledger.barrier import Watermarks, wait_for_writers
from ..ledger.filters import Refused
from ..pricing import usd

DEFAULT_GROUP_BY = ("billing_owner", "price_table")
T = TypeVar("T")
ReportFormat = Literal["json", "csv", "table"]


@dataclass(frozen=True, slots=True)
class SpendReport:
    """Spend is what clients were told: finished requests only. Those still running
    are counted apart, in `in_flight`, since nothing is known yet of their cost."""

    group_by: tuple[str, ...]
    groups: tuple[SpendGroup, ...]
    in_flight: int = 0

    @property
    def total_nanousd(self) -> int:
        return sum(group.cost_nanousd for group in self.groups)


def parse_group_by(text: str | None) -> tuple[str, ...]:
    """`billing_owner,price_table` → the fields, checked against what the ledger can group by."""
    if text is None or not text.strip():
        return DEFAULT_GROUP_BY
    fields = tuple(name.strip() for name in text.split(","))
    for name in fields:
        if name not in GROUPS:
            raise InvalidRequest(
                f"Cannot group spend by '{name}'; group by any of: {', '.join(GROUPS)} (comma-separated)."
            )
    repeated = sorted({name for name in fields if fields.count(name) > 1})
    if repeated:
        raise InvalidRequest(f"Group spend by each field once; named more than once: {', '.join(repeated)}.")
    return fields


def check_focus_options(form: str, *, grouping: str | None, aggregate: str | None, spelled: dict[str, str]) -> None:
    """A FOCUS export has a line per charge, or per day with `aggregate`; the other reports
    group by fields and never aggregate. `spelled`: how the caller names `group_by`,
    `aggregate` and the focus format (`--by`, `--aggregate`, `--format focus` for the CLI)."""
    if form == "focus" and grouping:
        raise InvalidRequest(
            f"A FOCUS export has a line per charge (or per day with {spelled['aggregate']} daily), not groups: "
            f"leave out {spelled['group_by']}.",
            param="group_by",
        )
    if aggregate and form != "focus":
        raise InvalidRequest(
            f"{spelled['aggregate']} applies to the FOCUS export only: add {spelled['format']}, "
            f"or leave out {spelled['aggregate']}.",
            param="aggregate",
        )


def parse_bound(text: str) -> str:
    """A `since`/`until` bound as the ledger compares it: a date stays `YYYY-MM-DD`; a
    datetime becomes UTC in the ledger's own spelling, because `created_at` is compared
    as text and `+02:00` or a missing `Z` would compare wrongly. A naive datetime is UTC."""
    text = text.strip()
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"'{text}' is not an ISO 8601 date or datetime (e.g. 2026-11-01 or 2026-11-01T09:30Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# --- output --------------------------------------------------------------------------------


def render(report: SpendReport, form: ReportFormat) -> str:
    """The report as `GET /admin/spend` sends it and `tollgate spend` prints it: the same text."""
    if form == "csv":
        return to_csv(report)
    if form == "table":
        return to_table(report)
    return orjson.dumps(to_json(report)).decode()


def to_json(report: SpendReport) -> dict[str, Any]:
    rows = [{**group.key, "requests": group.requests, "cost_usd": _usd(group.cost_nanousd)} for group in report.groups]
    shown = {"group_by": list(report.group_by), "rows": rows, "total_usd": _usd(report.total_nanousd)}
    if report.in_flight:  # an addition to the documented shape, present only when there is something to say
        shown["in_flight"] = report.in_flight
    return shown


def to_csv(report: SpendReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*report.group_by, "requests", "cost_usd"])
    for group in report.groups:
        writer.writerow(
            [*(_text(group.key[name], "") for name in report.group_by), group.requests, _usd(group.cost_nanousd)]
        )
    return out.getvalue()


def to_table(report: SpendReport) -> str:
    assert report.group_by, "parse_group_by never yields an empty grouping"
    amounts = [from_nano(group.cost_nanousd) or Decimal(0) for group in report.groups]
    total = from_nano(report.total_nanousd) or Decimal(0)
    # Every amount with as many decimals as the most precise one: the points line up, the values stay exact.
    places = max((_decimals(amount) for amount in [*amounts, total]), default=0)
    header = [*report.group_by, "requests", "cost_usd"]
    body = [
        [*(_text(group.key[name], "-") for name in report.group_by), str(group.requests), f"{amount:.{places}f}"]
        for group, amount in zip(report.groups, amounts, strict=True)
    ]
    # No request count on the total line: a request billed by two providers counts in two groups.
    footer = ["total", *([""] * len(report.group_by)), f"{total:.{places}f}"]
    widths = [max(len(line[column]) for line in [header, *body, footer]) for column in range(len(header))]
    numeric = len(header) - 2  # requests and cost_usd are right-aligned

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if column >= numeric else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    lines = [line(header), rule, *(line(cells) for cells in body), rule, line(footer)]
    if report.in_flight:
        lines.append(f"(not counted: {report.in_flight} request(s) still in flight)")
    return "\n".join(lines)


def _usd(nano: int) -> str:
    return usd(from_nano(nano) or Decimal(0))


def _decimals(amount: Decimal) -> int:
    exponent = amount.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _text(value: Any, missing: str) -> str:
    if value is None:
        return missing
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- straight from the database (the CLI: no proxy needs to run) ---------------------------


class LedgerUnavailable(Exception):
    """The ledger database cannot be read; the message says where to look."""


def spend_report(sql: SqlLedger, connection: Any, group_by: Sequence[str], filters: Filters) -> SpendReport:
    groups = sql.spend(connection, group_by, filters)
    return SpendReport(tuple(group_by), tuple(groups), sql.in_flight(connection, filters))


def read_spend(url: str, group_by: Sequence[str], filters: Filters, *, wait_s: float = 5) -> SpendReport:
    return read_ledger(url, lambda sql, connection: spend_report(sql, connection, group_by, filters), wait_s=wait_s)


def read_ledger(url: str, work: Callable[[SqlLedger, Any], T], *, wait_s: float | None = 5) -> T:
    """`work` done on a connection to the ledger database at `url`, once the writers of
    the proxies running on it have recorded what they answered (waiting at most `wait_s`,
    as `ledger.read_wait_s`; None: no wait); or LedgerUnavailable."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():  # opening it would create an empty one, hiding a wrong directory
            raise LedgerUnavailable(
                f"no ledger database at {path.resolve()}; run from the directory the proxy runs in, or check ledger.url"
            )
    ledger = SqlLedger(url)
    try:
        with ledger.connect() as connection:
            # Without the barrier's tables no proxy that keeps them has run on this ledger: nothing to wait for.
            if wait_s is not None and Watermarks(ledger).present(connection):
                wait_for_writers(ledger, connection, wait_s=wait_s)
            return work(ledger, connection)
    except Refused:
        raise  # what was asked is at fault, not the database: the caller says what to change
    except LedgerBehind as behind:
        raise LedgerUnavailable(
            f"{len(behind.behind)} running proxy(ies) had not recorded every request they answered within "
            f"{behind.waited_s:.1f}s (their ledger database may be slow or unreachable from them); retry shortly"
        ) from None
    except Exception as error:  # the driver's message names the problem; the URL may hold a password
        raise LedgerUnavailable(
            f"cannot read the ledger database (ledger.url): {type(error).__name__}: {error}"
        ) from None


# --- the journal ---------------------------------------------------------------------------


def stranded_journals(directory: str | Path, url: str) -> list[Path]:
    """Journal files that no running proxy is applying (a proxy stopped without draining):
    their rows are in no database until a proxy next starts on that journal directory.
    A running proxy's journal is no concern: reads wait for its writer."""
    files = sorted(Path(directory).glob("*.jsonl"))
    if not files:
        return []
    try:
        live = read_ledger(url, _live_writers, wait_s=None)
    except LedgerUnavailable:
        return files  # the read itself will say what is wrong
    return [path for path in files if path.name.split(".")[0] not in live]


def _live_writers(sql: SqlLedger, connection: Any) -> set[str]:
    watermarks = Watermarks(sql)
    return {mark.owner for mark in watermarks.live_writers(connection)} if watermarks.present(connection) else set()
