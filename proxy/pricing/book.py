"""Which price table prices a provider's traffic: the provider's own table, or,
for models it does not list, LiteLLM's catalog. One table per charge, never a mix.

`PriceBook.table_for` is the one place that decides: the pricer asks it for every
request, and `tollgate check` asks it for every target, so what check shows is
what bills."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from ..config import Config
from ..config.schema import ModelPrices, PriceTable
from ..config.tables import builtin_price_tables, price_table
from .catalog import CATALOG_TABLE, catalog_prices, catalog_table
from .usage import Metered


@dataclass(frozen=True, slots=True)
class PricedTable:
    name: str
    table: PriceTable
    # Each model, as metered, and the name it is listed under in this table.
    entries: Mapping[str, str]

    @property
    def source(self) -> str:
        return self.table.source

    def prices_for(self, metered: Metered) -> ModelPrices:
        return self.table.models[self.entries[metered.model]]


@lru_cache(maxsize=4096)  # asked for every request; bounded, as a Responses tool's model is the client's
def listed_names(kind: str, model: str, route: str | None = None) -> tuple[str, ...]:
    """The names a price table may list an upstream `model` under, most specific first.

    A `litellm` model string names LiteLLM's provider before the vendor's model
    (`anthropic/claude-sonnet-4-5`, `bedrock/converse/anthropic.claude-…`,
    `openrouter/anthropic/claude-…`), while a vendor's price page names the model
    alone: the string is tried whole, then without each leading prefix in turn.
    `route`: the route's name, for an upstream name no table lists (an Azure
    deployment, say)."""
    names = [model]
    if kind == "litellm":
        parts = model.split("/")
        names += ["/".join(parts[start:]) for start in range(1, len(parts)) if parts[start]]
    if route is not None:
        names.append(route)
    return tuple(dict.fromkeys(names))


class PriceBook:
    def __init__(self, config: Config) -> None:
        self._kinds = {name: provider.kind for name, provider in config.providers.items()}
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

    def table_for(self, provider: str, route: str, model: str, metered: Sequence[str] = ()) -> PricedTable | None:
        """The one table that prices `provider`'s traffic on `route` to upstream `model`,
        and every other model in `metered` (a Responses image tool's); None: unpriced."""
        names = self.names(provider, route, model, metered)
        if provider in self._own:
            table_name, own = self._own[provider]
            if (entries := _entries(own.models.__contains__, names)) is not None:
                return PricedTable(table_name, own, entries)
        entries = _entries(_in_catalog, names)
        if entries is None:
            return None
        return PricedTable(CATALOG_TABLE, catalog_table(tuple(sorted(set(entries.values())))), entries)

    def official_for(self, provider: str, route: str, model: str, metered: Sequence[str] = ()) -> PricedTable | None:
        """The first official table (by name) that prices every model: their list price."""
        names = self.names(provider, route, model, metered)
        for table_name, table in self._official.items():
            if (entries := _entries(table.models.__contains__, names)) is not None:
                return PricedTable(table_name, table, entries)
        return None

    def names(self, provider: str, route: str, model: str, metered: Sequence[str] = ()) -> dict[str, tuple[str, ...]]:
        """Each model, and the names a table may list it under; only `model`, the
        route's upstream model, answers to the route's name too."""
        kind = self._kinds[provider]
        names = {model: listed_names(kind, model, route)}
        for other in metered:
            if other != model:
                names[other] = listed_names(kind, other)
        return names


def _in_catalog(name: str) -> bool:
    return catalog_prices(name) is not None


def _entries(lists: Callable[[str], bool], names: Mapping[str, Sequence[str]]) -> dict[str, str] | None:
    """Each model's first name that `lists` says the table has, or None when one has none."""
    entries = {}
    for model, candidates in names.items():
        for name in candidates:
            if lists(name):
                entries[model] = name
                break
        else:
            return None
    return entries
