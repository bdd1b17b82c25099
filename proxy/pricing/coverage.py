"""A route no table prices would put rows in the ledger that nobody can bill:
`tollgate check` (and `serve`) refuse it unless the route says `unpriced: true`."""

from __future__ import annotations

from collections.abc import Iterator

from ..config import Config, ConfigIssue
from .book import PriceBook


def price_coverage_issues(config: Config) -> Iterator[ConfigIssue]:
    book = PriceBook(config)
    for name, route in config.routes.items():
        if route.unpriced:
            continue
        for field, targets in (("targets", route.targets), ("fallbacks", route.fallbacks)):
            for index, target in enumerate(targets):
                if book.table_for(target.provider, [target.model], {target.model: name}) is None:
                    table = config.providers[target.provider].price_table or "no price table"
                    yield ConfigIssue(
                        f"routes.{name}.{field}[{index}]",
                        f"provider '{target.provider}' ({table}) has no price for '{target.model}', nor does the "
                        f"catalog; add the model to its price table, or set `unpriced: true` on the route",
                    )
