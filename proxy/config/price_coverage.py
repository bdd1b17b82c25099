"""Which table will price each route target, as `PriceBook` decides it for real
requests. A route no table prices would put rows in the ledger that nobody can
bill: `tollgate check` (and `serve`) refuse it unless the route says `unpriced:
true`. A target priced from the catalog, a third party's copy of list prices, is
warned about, and refused by `tollgate check --strict`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..pricing.book import PriceBook, PricedTable
from ..pricing.catalog import CATALOG_TABLE
from .issues import ConfigIssue
from .schema import Config


@dataclass(frozen=True, slots=True)
class TargetPricing:
    location: str  # routes.NAME.targets[i] or routes.NAME.fallbacks[i]
    route: str
    provider: str
    model: str
    own_table: str | None  # the provider's `price_table`
    own_table_built_in: bool  # shipped with Tollgate: not one to add models to
    names: tuple[str, ...]  # the names a table may list the model under
    table: PricedTable | None  # None: no table prices it
    unpriced_by_choice: bool  # the route says `unpriced: true`

    @property
    def on_catalog(self) -> bool:
        return self.table is not None and self.table.name == CATALOG_TABLE and not self.unpriced_by_choice

    @property
    def entry(self) -> str | None:
        """The name the target's model is listed under in its table."""
        return self.table.entries[self.model] if self.table else None

    def catalog_warning(self) -> str:
        """That the target is priced from the catalog, why, and what to change."""
        return f"priced on {CATALOG_TABLE} (catalog), a third party's copy of list prices: {self._why_not_own()}"

    def _why_not_own(self) -> str:
        table, settings = self.own_table, f"providers.{self.provider}"
        if table is None:
            return f"provider '{self.provider}' has no price table; give {settings} a `price_table` that lists it"
        if len(self.names) == 1:
            missing, fix = f"does not list '{self.model}'", f"add it to price_tables.{table}"
        else:
            names = ", ".join(f"'{name}'" for name in self.names)
            missing = f"lists '{self.model}' under none of {names}"
            fix = f"add it to price_tables.{table} under one of those names"
        if self.own_table_built_in:
            fix = f"{table} is built in: give {settings} a `price_table` of your own that lists it"
        return f"{table} (provider '{self.provider}') {missing}; {fix}"


def target_pricing(config: Config) -> Iterator[TargetPricing]:
    book = PriceBook(config)
    for name, route in config.routes.items():
        for field, targets in (("targets", route.targets), ("fallbacks", route.fallbacks)):
            for index, target in enumerate(targets):
                yield TargetPricing(
                    location=f"routes.{name}.{field}[{index}]",
                    route=name,
                    provider=target.provider,
                    model=target.model,
                    own_table=(own := config.providers[target.provider].price_table),
                    own_table_built_in=own is not None and own not in config.price_tables,
                    names=book.names(target.provider, name, target.model)[target.model],
                    table=book.table_for(target.provider, name, target.model),
                    unpriced_by_choice=route.unpriced,
                )


def price_coverage_issues(config: Config) -> Iterator[ConfigIssue]:
    for target in target_pricing(config):
        if target.table is None and not target.unpriced_by_choice:
            yield ConfigIssue(
                target.location,
                f"provider '{target.provider}' ({target.own_table or 'no price table'}) has no price for "
                f"'{target.model}', nor does the catalog; add the model to its price table, or set `unpriced: true` "
                "on the route",
            )


def catalog_priced_issues(config: Config) -> Iterator[ConfigIssue]:
    """Targets that would be priced from the catalog (`tollgate check --strict` refuses them)."""
    for target in target_pricing(config):
        if target.on_catalog:
            yield ConfigIssue(target.location, target.catalog_warning())
