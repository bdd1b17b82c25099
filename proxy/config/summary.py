"""What `tollgate check` prints: where each route sends traffic, who is billed,
and which price table will price each target, with its source: the table the
pricer itself will use, warned about when it is the catalog."""

from __future__ import annotations

from ..pricing.prices import builtin_price_tables, table_named
from .loading import LoadedConfig
from .price_coverage import TargetPricing, target_pricing
from .schema import Config, Target


def describe(loaded: LoadedConfig) -> str:
    config = loaded.config
    pricing = {priced.location: priced for priced in target_pricing(config)}
    lines = [f"{loaded.source}: valid (version {loaded.version})", "", "routes"]
    for name, route in config.routes.items():
        owner = route.owner or "NO OWNER"
        lines.append(f"  {name}  owner: {owner}  timeout {route.timeout_s:g}s  retries {route.retries}")
        for index, target in enumerate(route.targets):
            priced = pricing[f"routes.{name}.targets[{index}]"]
            lines.append(f"    -> {_target(config, target, f'weight {target.weight:g}', priced)}")
        for index, target in enumerate(route.fallbacks):
            priced = pricing[f"routes.{name}.fallbacks[{index}]"]
            lines.append(f"    -> {_target(config, target, 'fallback', priced)}")

    lines += ["", "providers"]
    for name, provider in config.providers.items():
        verified = "  verified" if provider.verified else ""
        where = provider.base_url or "(default URL)"
        lines.append(f"  {name}  {provider.kind}  {where}  billing {provider.billing_owner}{verified}")

    lines += ["", "billing owners"]
    owners: dict[str, list[str]] = {}
    for name, provider in config.providers.items():
        owners.setdefault(provider.billing_owner, []).append(name)
    lines += [f"  {owner}  <- {', '.join(names)}" for owner, names in owners.items()]

    lines += ["", "price tables"]
    used = {provider.price_table for provider in config.providers.values() if provider.price_table}
    for name in sorted(used | set(config.price_tables)):
        table = table_named(config.price_tables, name)
        origin = "built in" if name in builtin_price_tables() and name not in config.price_tables else "config"
        lines.append(
            f"  {name}  {table.source}  published by {table.provider}, effective {table.effective}, "
            f"{origin}, {len(table.models)} models  {table.url}"
        )

    lines += [
        "",
        f"client keys: {len(config.keys)}" if config.keys is not None else "client keys: none (the proxy runs OPEN)",
    ]
    warnings = [
        f"providers.{name}.api_key is empty: the simulator answers for it until it is set"
        for name, provider in config.providers.items()
        if provider.key_is_missing
    ]
    warnings += [
        f"{priced.location}: {priced.catalog_warning()} (`tollgate check --strict` refuses this)"
        for priced in pricing.values()
        if priced.on_catalog
    ]
    if warnings:
        lines += ["", "warnings", *(f"  {warning}" for warning in warnings)]
    return "\n".join(lines)


def _target(config: Config, target: Target, role: str, priced: TargetPricing) -> str:
    provider = config.providers[target.provider]
    if priced.unpriced_by_choice:
        prices = "nothing (the route is `unpriced: true`)"
    elif priced.table is None:
        prices = "nothing"
    else:
        prices = f"{priced.table.name} ({priced.table.source})"
        if priced.entry != target.model:
            prices += f" as {priced.entry}"
    return f"{target.provider}/{target.model}  {role}  billing {provider.billing_owner}  prices {prices}"
