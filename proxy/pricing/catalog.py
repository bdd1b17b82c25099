"""LiteLLM's price map as a `catalog` table: a third party's copy of list prices,
for models no configured table prices. Never reported as official.

The map is read straight from the installed LiteLLM package's JSON file: importing
LiteLLM itself takes seconds and would fetch the map over the network.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import importlib.util
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from .prices import ModelPrices, PriceTable, TokenPrices

CATALOG_TABLE = "litellm-catalog"
_MAP_FILE = "model_prices_and_context_window_backup.json"
_PER_MILLION = Decimal(1_000_000)
# LiteLLM's per-token keys, by the token kind our tables use.
_KEYS = {
    "text_input": "input_cost_per_token",
    "cached_text_input": "cache_read_input_token_cost",
    "text_output": "output_cost_per_token",
    "image_input": "input_cost_per_image_token",
    "cached_image_input": "cache_read_input_image_token_cost",
    "image_output": "output_cost_per_image_token",
}


@cache
def _raw_map() -> dict[str, Any]:
    path = _map_path()
    return orjson.loads(path.read_bytes()) if path else {}


def _map_path() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / _MAP_FILE
    return path if path.exists() else None


@cache
def catalog_prices(model: str) -> ModelPrices | None:
    """The catalog's prices for `model`; a LiteLLM model string (`vendor/model`) is also
    looked up by its bare name, as most of the map's keys are."""
    raw = _raw_map()
    entry = raw.get(model)
    if entry is None and "/" in model:
        entry = raw.get(model.split("/", 1)[1])
    if not isinstance(entry, dict):
        return None
    tokens = {}
    for kind, key in _KEYS.items():
        value = entry.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # repr is the shortest exact spelling of the float: 2.5e-06 -> Decimal("0.0000025")
            tokens[kind] = Decimal(repr(value)) * _PER_MILLION
    return ModelPrices(tokens=TokenPrices(**tokens)) if tokens else None


@cache
def catalog_table(models: tuple[str, ...]) -> PriceTable:
    """The catalog restricted to `models` (all of which it must price)."""
    version = importlib.metadata.version("litellm")
    path = _map_path()
    effective = dt.date.fromtimestamp(path.stat().st_mtime) if path else dt.date.today()
    return PriceTable(
        source="catalog",
        provider="litellm",
        effective=effective,
        url=f"https://github.com/BerriAI/litellm/blob/v{version}/model_prices_and_context_window.json",
        models={model: prices for model in models if (prices := catalog_prices(model))},
    )
