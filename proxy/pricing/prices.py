"""Price types: a table of prices per model, as a vendor or reseller publishes it,
whether it comes from `price_tables:` in the config, ships built in
(providers/price_tables/) or is read from LiteLLM's catalog. Money is Decimal,
read from YAML exactly."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from providers.price_tables import BUILTIN_TABLE_NAMES, builtin_table_text
from providers.registry import Name

PriceSource = Literal["official", "provider", "catalog"]
Quality = Literal["low", "medium", "high", "auto", "xhigh", "max", "standard", "hd"]
Usd = Annotated[Decimal, Field(ge=0)]
SIZE_PATTERN = re.compile(r"^(auto|\d+x\d+)$")


class _Prices(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenPrices(_Prices):
    """USD per 1M tokens, by token kind."""

    text_input: Usd | None = None
    cached_text_input: Usd | None = None
    text_output: Usd | None = None
    image_input: Usd | None = None
    cached_image_input: Usd | None = None
    image_output: Usd | None = None


class ModelPrices(_Prices):
    """A model's prices: per image by quality and size (USD), per 1M tokens, or both.

    `billing` says which one the bill follows. `per_token`: every token kind at its
    token price (per-image figures, if any, serve only estimates: OpenAI's own table).
    `per_image`: each image at its size x quality price, plus input tokens where
    token prices are given (a reseller's table). Unset: per_image when there are
    image prices and no image_output token price, else per_token.
    """

    image: dict[Quality, dict[str, Usd]] | None = None
    tokens: TokenPrices | None = None
    billing: Literal["per_token", "per_image"] | None = None

    @property
    def bills_per_image(self) -> bool:
        if self.billing is not None:
            return self.billing == "per_image"
        return self.image is not None and (self.tokens is None or self.tokens.image_output is None)

    @field_validator("image")
    @classmethod
    def _sizes_are_sizes(cls, image: dict[str, dict[str, Decimal]] | None) -> dict | None:
        for quality, by_size in (image or {}).items():
            for size in by_size:
                if not SIZE_PATTERN.match(size):
                    raise ValueError(f"'{quality}.{size}' is not a size; write WIDTHxHEIGHT, e.g. 1024x1024")
        return image

    @model_validator(mode="after")
    def _has_a_price(self) -> ModelPrices:
        if self.image is None and self.tokens is None:
            raise ValueError("give `image` (per image by quality and size) or `tokens` (per 1M tokens), or both")
        if self.billing == "per_image" and self.image is None:
            raise ValueError("`billing: per_image` needs `image` prices by quality and size")
        if self.billing == "per_token" and self.tokens is None:
            raise ValueError("`billing: per_token` needs `tokens` prices")
        return self


class PriceTable(_Prices):
    source: PriceSource
    provider: Name  # who publishes these prices
    effective: dt.date
    url: Name
    models: dict[Name, ModelPrices]


class DecimalYamlLoader(yaml.SafeLoader):
    """YAML whose floats load as Decimal, so `0.009` is exactly 0.009 dollars."""


def _decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    return Decimal(loader.construct_scalar(node).replace("_", ""))


DecimalYamlLoader.add_constructor("tag:yaml.org,2002:float", _decimal)


@cache
def builtin_price_tables() -> dict[str, PriceTable]:
    return {
        name: PriceTable.model_validate(yaml.load(builtin_table_text(name), Loader=DecimalYamlLoader))
        for name in sorted(BUILTIN_TABLE_NAMES)
    }


def table_named(configured: Mapping[str, PriceTable], name: str) -> PriceTable:
    """A table the config names: one of its own (`configured`) or a built-in one; the
    config's loader has checked that it exists."""
    return configured.get(name) or builtin_price_tables()[name]
