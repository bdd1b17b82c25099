"""The parts of `config.yaml` pricing reads, as pricing sees them. The proxy's config
has this shape; pricing does not import the config package, which builds on
pricing's own types (`prices.py`) and asks it whether every route is priced."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

from .prices import PriceTable


class ProviderPricing(Protocol):
    kind: str  # a litellm model string names its vendor first: tables are searched without it
    price_table: str | None
    billing_owner: str
    failed_attempts: Literal["not_billed", "input_tokens", "estimate"]


class RoutePricing(Protocol):
    estimate_output_tokens: int  # assumed when a request sets no maximum
    unpriced: bool  # the route is served unpriced, on purpose


class PricingConfig(Protocol):
    price_tables: Mapping[str, PriceTable]
    providers: Mapping[str, ProviderPricing]
    routes: Mapping[str, RoutePricing]
