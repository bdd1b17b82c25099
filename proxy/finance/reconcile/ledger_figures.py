"""The ledger's side of a reconciliation: per UTC day and model, what one provider
bills according to the ledger, and what in it is uncertain (rows abandoned mid-request,
rows costed from an estimate), which is where a difference usually comes from."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from ...ledger import to_nano
from ...ledger.sql import BilledRow


@dataclass
class LedgerFigures:
    requests: int = 0
    cost_nanousd: int = 0
    images: int = 0
    abandoned: int = 0
    abandoned_nanousd: int = 0
    estimated: int = 0  # finished rows costed wholly or partly (a stream its client closed) from the estimate
    estimated_nanousd: int = 0
    line_items: dict[str, int] = field(default_factory=dict)  # "input", "cached input", "output" → nano-dollars
    tables: set[str] = field(default_factory=set)

    def add(self, row: BilledRow) -> None:
        self.requests += 1
        self.cost_nanousd += row.cost_nanousd
        self.images += row.images
        if row.price_table:
            self.tables.add(row.price_table)
        if row.status == "abandoned":
            self.abandoned += 1
            self.abandoned_nanousd += row.cost_nanousd
        elif row.cost_basis in ("estimate", "partial_estimate"):
            self.estimated += 1
            self.estimated_nanousd += row.cost_nanousd
        for line in row.cost_lines:
            item = line_item(str(line["item"]))
            self.line_items[item] = self.line_items.get(item, 0) + (to_nano(Decimal(line["amount_usd"])) or 0)


def ledger_figures(rows: Iterable[BilledRow]) -> dict[tuple[dt.date, str], LedgerFigures]:
    figures: dict[tuple[dt.date, str], LedgerFigures] = {}
    for row in rows:
        figures.setdefault((dt.date.fromisoformat(row.day), row.model), LedgerFigures()).add(row)
    return figures


def line_item(item: str) -> str:
    """A cost line's item in the words of OpenAI's Costs API line items: input, cached input, output."""
    kind = item.split()[0]
    if kind.startswith("cached_"):
        return "cached input"
    return "input" if kind.endswith("_input") else "output"  # output tokens, or images made
