"""Price tables by name: the ones in `config.yaml` and the ones that ship built in."""

from __future__ import annotations

from functools import cache

import yaml

from providers.price_tables import BUILTIN_TABLE_NAMES, builtin_table_text

from .loading import ExactYamlLoader
from .schema import Config, PriceTable


@cache
def builtin_price_tables() -> dict[str, PriceTable]:
    return {
        name: PriceTable.model_validate(yaml.load(builtin_table_text(name), Loader=ExactYamlLoader))
        for name in sorted(BUILTIN_TABLE_NAMES)
    }


def price_table(config: Config, name: str) -> PriceTable:
    """A table named in the config; the loader has already checked that it exists."""
    return config.price_tables.get(name) or builtin_price_tables()[name]
