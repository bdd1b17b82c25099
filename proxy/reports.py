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

from providers.errors import InvalidRequest

from .ledger import GROUPS, Filters, SpendGroup, from_nano
from .ledger.sql import SqlLedger
from .pricing import usd

DEFAULT_GROUP_BY = ("billing_owner", "price_table")
T = TypeVar("T")
ReportFormat = Literal["json", "csv", "table"]


@dataclass(frozen=True, slots=True)
class SpendReport:
    group_by: tuple[str, ...]
    groups: tuple[SpendGroup, ...]

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
    return {"group_by": list(report.group_by), "rows": rows, "total_usd": _usd(report.total_nanousd)}


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
    return "\n".join([line(header), rule, *(line(cells) for cells in body), rule, line(footer)])


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


def read_spend(url: str, group_by: Sequence[str], filters: Filters) -> SpendReport:
    groups = read_ledger(url, lambda ledger, connection: ledger.spend(connection, group_by, filters))
    return SpendReport(tuple(group_by), tuple(groups))


def read_ledger(url: str, work: Callable[[SqlLedger, Any], T]) -> T:
    """`work` done on a connection to the ledger database at `url`, or LedgerUnavailable."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():  # opening it would create an empty one, hiding a wrong directory
            raise LedgerUnavailable(
                f"no ledger database at {path.resolve()}; run from the directory the proxy runs in, or check ledger.url"
            )
    ledger = SqlLedger(url)
    try:
        with ledger.connect() as connection:
            return work(ledger, connection)
    except Exception as error:  # the driver's message names the problem; the URL may hold a password
        raise LedgerUnavailable(
            f"cannot read the ledger database (ledger.url): {type(error).__name__}: {error}"
        ) from None


# --- the journal ---------------------------------------------------------------------------


def journal_files(directory: str | Path) -> list[Path]:
    """Journal files still on disk: their rows may not be in the database yet."""
    return sorted(Path(directory).glob("*.jsonl"))
