"""The ledger as FOCUS, the FinOps Foundation's open cost-and-usage format that cloud
bills already use: `tollgate spend --format focus` and `GET /admin/spend?format=focus`.

The mapping (docs/finance.md, "FOCUS export"): the billing owner is the invoice issuer and the
billing account; the provider that served the request is the provider; the model's
maker is the publisher; BilledCost and EffectiveCost come from the table that
applied, ListCost from the official table for the same usage (where none prices it,
the charge itself, as FOCUS asks). Money is written from integer nano-dollars as
plain decimal strings: the file's sum is the ledger's, to the nano-dollar.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import orjson

from ...ledger import Filters, LedgerRow, SqlLedger
from ...ledger.charge_sums import DayOfCharges, days_of_charges
from ...pricing import usd
from .columns import COLUMNS, FIXED, VALIDATOR_NAMES
from .lines import FocusLine, charge_lines, daily_lines, summed_daily_lines

__all__ = ["COLUMNS", "focus_chunks", "focus_csv", "focus_daily_chunks", "ledger_focus"]


def focus_csv(rows: Iterable[LedgerRow], *, daily: bool = False) -> str:
    """FOCUS CSV: a line per charge, or with `daily` a line per day × route × provider × table."""
    return "".join(focus_chunks(rows, daily=daily))


def focus_chunks(rows: Iterable[LedgerRow], *, daily: bool = False) -> Iterator[str]:
    """The same CSV in pieces, written as the rows are read (oldest first, as the ledger
    reads them): an export holds a chunk of lines, or a day's sums, never the period."""
    lines = charge_lines(rows)
    return _chunks([daily_lines(lines) if daily else lines])


def ledger_focus(sql: SqlLedger, connection: Any, filters: Filters, *, daily: bool) -> Iterator[str]:
    """The ledger's charges in the period as FOCUS CSV, in pieces as they are read: a line
    per charge, or per day with `daily` (summed in SQL a day at a time)."""
    if daily:
        return focus_daily_chunks(days_of_charges(sql, connection, filters))
    return focus_chunks(sql.each(connection, filters))


def focus_daily_chunks(days: Iterable[DayOfCharges]) -> Iterator[str]:
    """The daily CSV from the ledger's charges summed a day at a time in SQL: the lines
    `focus_chunks(rows, daily=True)` writes, without reading each row into Python. Each
    day's lines are sent when that day is summed."""
    return _chunks(summed_daily_lines(day) for day in days)


def _chunks(parts: Iterable[Iterable[FocusLine]], lines_per_chunk: int = 500) -> Iterator[str]:
    """CSV text: a piece every `lines_per_chunk` lines, and at the end of each part."""
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for part in parts:
        for count, line in enumerate(part, 1):
            writer.writerow(_record(line))
            if count % lines_per_chunk == 0:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        if out.tell():
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    if out.tell():  # the header of an export with no line
        yield out.getvalue()


def _record(line: FocusLine) -> dict[str, str | None]:
    """The line's columns; those left out are null. The unit prices are among them: a line
    prices several things at once (text input and image output tokens, say), at several rates."""
    billed, listed = _usd(line.billed_nanousd), _usd(line.listed_nanousd)
    quantity = _decimal(Decimal(line.quantity))
    month = dt.datetime(line.start.year, line.start.month, 1, tzinfo=dt.UTC)
    next_month = (month + dt.timedelta(days=32)).replace(day=1)
    service, subcategory = line.service
    sku = f"{line.price_table}/{line.model}"
    record: dict[str, str | None] = {
        **FIXED,
        "BilledCost": billed,
        "EffectiveCost": billed,  # usage is billed as it happens: nothing to amortise
        "ContractedCost": billed,  # no contract price apart from the table's: FOCUS says equal BilledCost
        "PricingCurrencyEffectiveCost": billed,
        "ListCost": listed,
        "BillingAccountId": line.billing_owner,
        "BillingAccountName": line.billing_owner,
        "InvoiceIssuerName": line.billing_owner,
        "ProviderName": line.provider,
        "PublisherName": line.publisher,
        "BillingPeriodStart": _moment(month),
        "BillingPeriodEnd": _moment(next_month),
        "ChargePeriodStart": _moment(line.start),
        "ChargePeriodEnd": _moment(line.end),
        "ChargeDescription": line.description,
        "ConsumedQuantity": quantity,
        "ConsumedUnit": line.unit,
        "PricingQuantity": quantity,
        "PricingUnit": line.unit,
        "ServiceName": service,
        "ServiceSubcategory": subcategory,
        "SkuId": sku,
        "SkuMeter": line.unit,
        "SkuPriceId": f"{sku}/{line.unit.lower()}",
        "Tags": orjson.dumps(line.tags, option=orjson.OPT_SORT_KEYS).decode(),
        **line.fields,
        "x_RequestCount": str(line.requests),
    }
    for name, old_name in VALIDATOR_NAMES.items():
        record[old_name] = record.get(name)
    return record


def _usd(nano: int) -> str:
    return _decimal(Decimal(nano).scaleb(-9))


def _decimal(value: Decimal) -> str:
    """A plain decimal, always with a fractional part: "2.0", not "2". Both are FOCUS's Numeric
    Format, but a loader that infers types from the text (pandas, the validator's) reads a
    column of whole numbers as integers and rejects it as not Decimal."""
    text = usd(value)
    return text if "." in text else f"{text}.0"


def _moment(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
