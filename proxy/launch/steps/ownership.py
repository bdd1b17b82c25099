"""Step 1: who owns the route and each provider it may use, read from the config."""

from __future__ import annotations

from providers.registry import ProviderSettings

from ...pricing.book import PriceBook
from ..context import LaunchContext
from ..step import Findings, Step


def check_ownership(launch: LaunchContext, found: Findings) -> None:
    name, route = launch.route_name, launch.route
    if found.require(bool(route.owner), f"routes.{name}.owner is not set: name the team that owns the route"):
        found.note(f"route owner {route.owner}")
    found.require(not route.unpriced, f"routes.{name} is `unpriced: true`: a launched route needs a price table")
    book = PriceBook(launch.config)
    seen: set[str] = set()
    for target in [*route.targets, *route.fallbacks]:
        if target.provider in seen:
            continue
        seen.add(target.provider)
        provider = launch.config.providers[target.provider]
        table = book.table_for(target.provider, name, target.model)
        where = f"providers.{target.provider}"
        priced = found.require(table is not None, f"{where}: no price table prices {target.model}; set `price_table`")
        found.require(bool(provider.support), f"{where}.support is not set: say where to go when it breaks")
        _check_formats(found, where, provider, route.target.output_format if route.target else None)
        if provider.needs_record:  # a gateway, reseller or wrapper
            found.require(
                provider.verified is not None,
                f"{where} ({provider.kind}) has no `verified:` record: record its owner, quota, export rights, "
                "privacy and failed-call billing before it carries traffic",
            )
        prices = f"{table.name} ({table.table.source})" if priced and table else "unpriced"
        found.note(
            f"{target.provider}: billing owner {provider.billing_owner}, prices {prices}, "
            f"support {provider.support or '-'}, formats {', '.join(provider.output_formats or ()) or '-'}"
            + (", verified" if provider.verified else "")
        )


def _check_formats(found: Findings, where: str, provider: ProviderSettings, route_format: str | None) -> None:
    formats = provider.output_formats
    if not found.require(
        bool(formats), f"{where}.output_formats is not set: list the image formats it returns (png, jpeg, webp)"
    ):
        return
    if route_format is not None:
        found.require(
            route_format in (formats or ()),
            f"{where}.output_formats ({', '.join(formats or ())}) lacks the route's output format {route_format}",
        )


OWNERSHIP = Step(
    1,
    "Ownership",
    "the route names its owner; each of its providers a billing owner, a price table with its source, a support "
    "path and the output formats it returns (the route's among them); a reseller or wrapper its `verified:` record",
    check_ownership,
)
