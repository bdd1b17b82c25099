"""What a provider says it billed, read from the files it gives: OpenAI's organization
Costs API and Usage API (images) pages, as those endpoints return them, or a plain CSV
(`date, model, requests, cost_usd`) such as a reseller sends. Either way: figures per
UTC day and model, and the days the report covers.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

CSV_COLUMNS = ("date", "model", "requests", "cost_usd")
ALL_MODELS = None  # a figure the provider did not break down by model


class ReportError(ValueError):
    """A provider report that cannot be read; the message says where and what to change."""


@dataclass
class ProviderFigures:
    """One day (and model, where given) as the provider reports it; None where it does not say."""

    cost: Decimal | None = None
    requests: int | None = None
    images: int | None = None
    line_items: dict[str, Decimal] = field(default_factory=dict)  # "input", "output", … → USD

    def add_cost(self, amount: Decimal, item: str | None) -> None:
        self.cost = (self.cost or Decimal(0)) + amount
        if item is not None:
            self.line_items[item] = self.line_items.get(item, Decimal(0)) + amount

    def add_requests(self, requests: int, images: int | None) -> None:
        self.requests = (self.requests or 0) + requests
        if images is not None:
            self.images = (self.images or 0) + images


@dataclass
class ProviderReport:
    days: set[dt.date] = field(default_factory=set)
    figures: dict[tuple[dt.date, str | None], ProviderFigures] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)  # what was read, for the heading

    def at(self, day: dt.date, model: str | None) -> ProviderFigures:
        return self.figures.setdefault((day, model), ProviderFigures())


def read_reports(paths: Iterable[Path]) -> ProviderReport:
    report = ProviderReport()
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as error:
            raise ReportError(f"{path}: cannot read it ({error.strerror or error})") from None
        if text.lstrip().startswith(("{", "[")):
            add_pages(report, _json(path, text), str(path))
        else:
            add_csv(report, text, str(path))
    return report


def add_pages(report: ProviderReport, pages: Any, source: str) -> None:
    """OpenAI's organization report pages: one page object, or a list of them (a paginated read)."""
    for page in pages if isinstance(pages, list) else [pages]:
        if not isinstance(page, dict) or page.get("object") != "page" or not isinstance(page.get("data"), list):
            raise ReportError(
                f'{source}: not a page of OpenAI\'s organization Costs or Usage API ({{"object": "page", "data": '
                "[...]}), nor a list of such pages"
            )
        for bucket in page["data"]:
            day = _bucket_day(bucket, source)
            report.days.add(day)
            for result in bucket.get("results") or []:
                _add_result(report, day, result, source)
    report.sources.append(source)


def add_csv(report: ProviderReport, text: str, source: str) -> None:
    reader = csv.reader(io.StringIO(text))
    header = [name.strip().lower() for name in next(reader, [])]
    if header != list(CSV_COLUMNS):
        raise ReportError(
            f"{source}: a provider CSV has the header `{', '.join(CSV_COLUMNS)}`; found `{', '.join(header)}`"
        )
    for number, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(CSV_COLUMNS):
            raise ReportError(f"{source}, line {number}: {len(cells)} values; expected {len(CSV_COLUMNS)}")
        date, model, requests, cost = (cell.strip() for cell in cells)
        try:
            day = dt.date.fromisoformat(date)
            count, amount = int(requests), Decimal(cost)
        except (ValueError, InvalidOperation):
            raise ReportError(
                f"{source}, line {number}: write the date as YYYY-MM-DD, requests as a whole number and cost_usd "
                f"as a decimal (got {date!r}, {requests!r}, {cost!r})"
            ) from None
        figures = report.at(day, model or ALL_MODELS)
        figures.add_cost(amount, None)
        figures.add_requests(count, None)
        report.days.add(day)
    if report.days:  # the days between the first and the last are covered: a missing one is a day of nothing
        first, last = min(report.days), max(report.days)
        report.days |= {first + dt.timedelta(days=offset) for offset in range((last - first).days + 1)}
    report.sources.append(source)


def _json(path: Path, text: str) -> Any:
    try:
        return json.loads(text, parse_float=Decimal)  # amounts exactly as the provider wrote them
    except json.JSONDecodeError as error:
        raise ReportError(f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})") from None


def _bucket_day(bucket: Any, source: str) -> dt.date:
    start = bucket.get("start_time") if isinstance(bucket, dict) else None
    if not isinstance(start, int):
        raise ReportError(f"{source}: a bucket without an integer `start_time` (Unix seconds)")
    return dt.datetime.fromtimestamp(start, dt.UTC).date()


def _add_result(report: ProviderReport, day: dt.date, result: dict[str, Any], source: str) -> None:
    kind = result.get("object")
    if kind == "organization.costs.result":
        amount = (result.get("amount") or {}).get("value")
        if not isinstance(amount, Decimal | int | str):
            raise ReportError(f"{source}: a costs result without `amount.value` on {day}")
        model, item = _line_item(result.get("line_item"))
        report.at(day, model).add_cost(Decimal(amount), item)
    elif kind == "organization.usage.images.result":
        report.at(day, result.get("model") or ALL_MODELS).add_requests(
            int(result.get("num_model_requests") or 0), int(result.get("images") or 0)
        )
    else:
        raise ReportError(
            f"{source}: a result of kind {kind!r} on {day}; reconcile reads organization.costs.result "
            "(Costs API) and organization.usage.images.result (Usage API, images)"
        )


def _line_item(line_item: Any) -> tuple[str | None, str | None]:
    """`"gpt-image-2, output"` → ("gpt-image-2", "output"); None (costs not grouped by line item) → all models."""
    if not isinstance(line_item, str) or not line_item.strip():
        return ALL_MODELS, None
    model, _, item = line_item.partition(",")
    return model.strip(), item.strip().lower() or None
