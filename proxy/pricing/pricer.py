"""Pricing a request on the table of the provider that serves it: an estimate
before the call, the actual cost from the upstream's usage after it."""

from __future__ import annotations

from decimal import Decimal

from providers.types import Call
from providers.values import value

from .book import PriceBook
from .config import PricingConfig
from .cost import Cost, Unpriced, cost_of
from .prices import ModelPrices
from .usage import Metered, Usage
from .usage_estimate import estimate_usage

ZERO = Decimal(0)


@value
class Priced:
    """A cost on one table, or why there is none."""

    cost: Cost | None
    unpriced: str | None = None  # the reason, when cost is None
    # The same usage on an official table (the vendor's list price), where one prices
    # it: what a reseller's markup or discount is measured against.
    listed: Cost | None = None

    @property
    def usd(self) -> Decimal | None:
        return self.cost.total_usd if self.cost else None

    @property
    def table(self) -> str | None:
        return self.cost.table if self.cost else None

    @property
    def source(self) -> str | None:
        return self.cost.source if self.cost else None


@value
class TargetEstimate:
    provider: str
    model: str
    billing_owner: str
    priced: Priced
    failed_attempt_usd: Decimal  # what this provider bills for a try that fails
    usage: Usage = ()  # what the estimate expects the request to consume

    def with_retries_usd(self, retries: int) -> Decimal | None:
        """The worst case on this provider: the request, and each retry's failed try before it."""
        usd = self.priced.usd
        return None if usd is None else usd + retries * self.failed_attempt_usd


class Pricer:
    def __init__(self, config: PricingConfig) -> None:
        self._config = config
        self._book = PriceBook(config)

    def estimate(self, call: Call, route: str, provider: str, model: str) -> TargetEstimate:
        settings = self._config.providers[provider]
        route_config = self._config.routes[route]
        usage = estimate_usage(call, model=model, image_model=None, output_tokens=route_config.estimate_output_tokens)
        priced = self.price(usage, route, provider, model)
        failed = ZERO
        if priced.cost is not None and settings.failed_attempts == "estimate":
            failed = priced.cost.total_usd
        elif priced.cost is not None and settings.failed_attempts == "input_tokens":
            failed = priced.cost.inputs_only().total_usd
        return TargetEstimate(provider, model, settings.billing_owner, priced, failed, usage)

    def price(self, usage: Usage, route: str, provider: str, model: str) -> Priced:
        """`usage` on the table `provider` bills by; `model` is the route's upstream model."""
        if self._config.routes[route].unpriced:
            return Priced(None, f"route '{route}' is marked unpriced")
        table = self._book.table_for(provider, route, model, [metered.model for metered in usage])
        if table is None:
            models = ", ".join(sorted({metered.model for metered in usage}))
            return Priced(None, f"no price table of provider '{provider}' (nor the catalog) prices {models}")
        try:
            cost = cost_of(usage, table.name, table.table, table.prices_for)
        except Unpriced as gap:
            return Priced(None, str(gap))
        listed = cost if cost.source == "official" else self._list_cost(usage, route, provider, model)
        return Priced(cost, listed=listed)

    def _list_cost(self, usage: Usage, route: str, provider: str, model: str) -> Cost | None:
        official = self._book.official_for(provider, route, model, [metered.model for metered in usage])
        if official is None:
            return None

        def list_prices(metered: Metered) -> ModelPrices:
            prices = official.prices_for(metered)
            if metered.images and not metered.image_output and prices.image is not None:
                # A per-image reseller that reports no output tokens: the vendor's per-image
                # figure is the list price of those images, not $0 of tokens.
                return prices.model_copy(update={"billing": "per_image"})
            return prices

        try:
            return cost_of(usage, official.name, official.table, list_prices)
        except Unpriced:
            return None  # the official table lacks a price this usage needs: no list price
