"""Cost, exactly: usage times the prices of one table, line by line, in Decimal.
Each line says what was bought, how many, and at what unit price, so every
figure on a bill can be traced to the table row it came from."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from providers.values import value

from .prices import ModelPrices, PriceTable
from .usage import Metered, Usage

TOKEN_KINDS = ("text_input", "cached_text_input", "image_input", "cached_image_input", "text_output", "image_output")
INPUT_KINDS = TOKEN_KINDS[:4]
_CACHED_FALLBACK = {"cached_text_input": "text_input", "cached_image_input": "image_input"}
_PER_MILLION = Decimal(1_000_000)
_QUALITY_ORDER = ("auto", "low", "standard", "medium", "high", "hd", "xhigh", "max")


class Unpriced(Exception):
    """The table has no price for something the request consumed."""


@value
class CostLine:
    model: str
    item: str  # e.g. "image_output tokens", "image 1024x1536 medium"
    quantity: int
    unit_usd: Decimal  # per token or per image

    @property
    def amount_usd(self) -> Decimal:
        return self.unit_usd * self.quantity

    def as_dict(self) -> dict[str, str | int]:
        return {
            "model": self.model,
            "item": self.item,
            "quantity": self.quantity,
            "unit_usd": usd(self.unit_usd),
            "amount_usd": usd(self.amount_usd),
        }


@value
class Cost:
    table: str
    source: str  # official | provider | catalog
    lines: tuple[CostLine, ...]
    total_usd: Decimal  # the lines' amounts summed: read several times a request, summed once

    @classmethod
    def of(cls, table: str, source: str, lines: tuple[CostLine, ...]) -> Cost:
        return cls(table, source, lines, sum((line.amount_usd for line in lines), Decimal(0)))

    def inputs_only(self) -> Cost:
        """What a provider that bills a refused request's input would charge."""
        inputs = tuple(line for line in self.lines if line.item.split()[0] in INPUT_KINDS)
        return Cost.of(self.table, self.source, inputs)


def usd(amount: Decimal) -> str:
    """A dollar amount as a plain decimal string, without exponent or trailing zeros."""
    text = format(amount.normalize(), "f")
    return text if text != "-0" else "0"


PricesFor = Callable[[Metered], ModelPrices]


def cost_of(usage: Usage, name: str, table: PriceTable, prices_for: PricesFor) -> Cost:
    lines: list[CostLine] = []
    for metered in usage:
        lines.extend(_lines(metered, prices_for(metered), name))
    return Cost.of(name, table.source, tuple(lines))


def _lines(metered: Metered, prices: ModelPrices, table: str) -> list[CostLine]:
    lines: list[CostLine] = []
    kinds = TOKEN_KINDS
    if prices.bills_per_image:
        if metered.images:
            size, quality, unit = _per_image(metered, prices, table)
            lines.append(CostLine(metered.model, f"image {size} {quality}", metered.images, unit))
        kinds = INPUT_KINDS if prices.tokens else ()  # the image price covers the output
    for kind in kinds:
        count = getattr(metered, kind)
        if count:
            lines.append(CostLine(metered.model, f"{kind} tokens", count, _token_price(metered, prices, kind, table)))
    return lines


def _token_price(metered: Metered, prices: ModelPrices, kind: str, table: str) -> Decimal:
    tokens = prices.tokens
    per_million = getattr(tokens, kind) if tokens else None
    if per_million is None and kind in _CACHED_FALLBACK:
        per_million = getattr(tokens, _CACHED_FALLBACK[kind]) if tokens else None  # no discount listed: full rate
    if per_million is None:
        raise Unpriced(f"price table '{table}' has no {kind} token price for {metered.model}")
    return per_million / _PER_MILLION


def _per_image(metered: Metered, prices: ModelPrices, table: str) -> tuple[str, str, Decimal]:
    """The price of one image at the size and quality it was made at. A quality the
    upstream did not resolve is priced at the dearest one listed for that size."""
    assert prices.image is not None
    size = metered.size or "1024x1024"
    by_quality = {quality: sizes[size] for quality, sizes in prices.image.items() if size in sizes}
    if not by_quality:
        raise Unpriced(f"price table '{table}' has no per-image price for {metered.model} at size {size}")
    quality = metered.quality if metered.quality in by_quality else None
    if quality is None:
        quality = max(by_quality, key=lambda q: (by_quality[q], _QUALITY_ORDER.index(q)))
    return size, quality, by_quality[quality]
