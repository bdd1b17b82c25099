"""Which price table prices a provider's traffic: the provider's own table, or,
for models it does not list, LiteLLM's catalog. One table per charge, never a mix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..config import Config
from ..config.schema import ModelPrices, PriceTable
from ..config.tables import builtin_price_tables, price_table
from ..usage import Metered
from .catalog import CATALOG_TABLE, catalog_prices, catalog_table


@dataclass(frozen=True, slots=True)
class PricedTable:
    name: str
    table: PriceTable
    # An upstream model name the table does not list (an Azure deployment, say) is
    # looked up by the route's name instead.
    aliases: Mapping[str, str] = field(default_factory=dict)

    def prices_for(self, metered: Metered) -> ModelPrices:
        found = _lookup(self.table, metered.model, self.aliases)
        assert found is not None, "PriceBook only hands out tables that price every model"
        return found


class PriceBook:
    def __init__(self, config: Config) -> None:
        self._own = {
            name: (provider.price_table, price_table(config, provider.price_table))
            for name, provider in config.providers.items()
            if provider.price_table
        }
        # Every official table, configured or built in: where a model's list price is looked up.
        self._official = {
            name: table
            for name, table in sorted({**builtin_price_tables(), **config.price_tables}.items())
            if table.source == "official"
        }

    def table_for(self, provider: str, models: Sequence[str], aliases: Mapping[str, str]) -> PricedTable | None:
        """The one table that prices every model in `models`, or None: unpriced."""
        if provider in self._own:
            name, own = self._own[provider]
            if all(_lookup(own, model, aliases) for model in models):
                return PricedTable(name, own, aliases)
        wanted = {model for model in models} | {aliases[model] for model in models if model in aliases}
        catalog = catalog_table(tuple(sorted(name for name in wanted if catalog_prices(name))))
        if all(_lookup(catalog, model, aliases) for model in models):
            return PricedTable(CATALOG_TABLE, catalog, aliases)
        return None

    def official_for(self, models: Sequence[str], aliases: Mapping[str, str]) -> PricedTable | None:
        """The first official table (by name) that prices every model in `models`: their list price."""
        for name, table in self._official.items():
            if all(_lookup(table, model, aliases) for model in models):
                return PricedTable(name, table, aliases)
        return None


def _lookup(table: PriceTable, model: str, aliases: Mapping[str, str]) -> ModelPrices | None:
    found = table.models.get(model)
    if found is None and model in aliases:
        found = table.models.get(aliases[model])
    return found
