"""What the simulator bills: every image generation and edit it served, priced at the
official table's rates, per upstream. The organization Costs and Usage endpoints
(`organization_api`) report from here, so a proxy's ledger can be reconciled against
what its "provider" says it served, as with OpenAI's own organization reports.

A generation is billed once the answer is made: a slow answer whose client left is
still billed (a real upstream finishes the work and bills it), and so is an answer the
`cut_stream` or `malformed` fault then damages. Refusals and error faults bill nothing.
Only models the official table lists are priced (the GPT Image models).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Final

import yaml

from providers.price_tables import builtin_table_text

OFFICIAL_TABLE: Final = "openai-official"
_PER_MILLION: Final = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Generation:
    """One image answer: its model as the request named it, and its usage."""

    model: str
    source: str  # image.generation | image.edit, as the Usage API names them
    size: str
    images: int
    text_tokens: int
    image_tokens: int  # input images
    output_tokens: int


@dataclass(frozen=True, slots=True)
class Billed:
    upstream: str
    at: float  # unix seconds
    generation: Generation

    @property
    def day_start(self) -> int:
        day = dt.datetime.fromtimestamp(self.at, dt.UTC).date()
        return int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp())

    def line_items(self) -> dict[str, Decimal] | None:
        """`{"<model>, input": usd, "<model>, output": usd}`, or None for a model the table lacks."""
        prices = official_token_prices().get(self.generation.model)
        if prices is None:
            return None
        g = self.generation
        text_in, image_in = prices.get("text_input", Decimal(0)), prices.get("image_input", Decimal(0))
        return {
            f"{g.model}, input": (g.text_tokens * text_in + g.image_tokens * image_in) / _PER_MILLION,
            f"{g.model}, output": g.output_tokens * prices.get("image_output", Decimal(0)) / _PER_MILLION,
        }


class BillingBook:
    """Everything billed since start (or the last reset), in the order served."""

    def __init__(self) -> None:
        self._billed: list[Billed] = []

    def bill(self, upstream: str, generation: Generation) -> None:
        self._billed.append(Billed(upstream, time.time(), generation))

    def of(self, upstream: str, start: int, end: int) -> list[Billed]:
        return [entry for entry in self._billed if entry.upstream == upstream and start <= entry.at < end]

    def clear(self) -> None:
        self._billed.clear()


@cache
def official_token_prices() -> dict[str, dict[str, Decimal]]:
    """USD per 1M tokens by model and token kind, from the built-in official table. The YAML's
    short decimals (5.00, 1.25, 30.00) survive float parsing exactly when read back via str."""
    table = yaml.safe_load(builtin_table_text(OFFICIAL_TABLE))
    return {
        model: {kind: Decimal(str(price)) for kind, price in (prices.get("tokens") or {}).items()}
        for model, prices in table["models"].items()
    }
