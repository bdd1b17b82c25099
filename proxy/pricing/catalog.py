"""LiteLLM's price map as a `catalog` table: a third party's copy of list prices,
for models no configured table prices. Never reported as official.

The map is read straight from the installed LiteLLM package's JSON file: importing
LiteLLM itself takes seconds and would fetch the map over the network.

Of the map's 3.4 MB (~5,000 models, each with dozens of fields) a price lookup needs
each model's six per-token prices. Those are what this process keeps (~1 MB, against
~6 MB for the whole map parsed), and they are kept on disk too, in the user's cache
folder ($XDG_CACHE_HOME/tollgate, else ~/.cache/tollgate; never the package), per copy
of the map (its path, size and modification time): a start-up reads them in ~4 ms
rather than parsing the whole map again (~25 ms). Where that folder cannot be written
(a read-only root, no home folder), every start parses the map, as before.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import importlib.util
import os
import tempfile
import zlib
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path
from typing import NamedTuple

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
_FORMAT = 2  # of the cached file: a change to what it holds changes this
# Models looked up, priced or not: a Responses tool's model is the client's to name, so bounded.
_LOOKUPS_KEPT = 4096


class _Catalog(NamedTuple):
    version: str  # LiteLLM's
    effective: dt.date  # the map file's date
    prices: dict[str, list[float | None] | None]  # model -> its prices in _KEYS' order, USD per token


@cache
def _catalog() -> _Catalog | None:
    path = _map_path()
    if path is None:
        return None
    stat = path.stat()
    source = {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "format": _FORMAT}
    cached = _cache_file(path)
    if cached is not None:
        try:
            document = orjson.loads(cached.read_bytes())
            if document["source"] == source:
                return _Catalog(document["version"], dt.date.fromisoformat(document["effective"]), document["prices"])
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            pass  # absent, or not ours to trust: made again below
    catalog = _Catalog(
        importlib.metadata.version("litellm"), dt.date.fromtimestamp(stat.st_mtime), _token_prices(path.read_bytes())
    )
    if cached is not None:
        document = {
            "source": source,
            "version": catalog.version,
            "effective": catalog.effective.isoformat(),
            "prices": catalog.prices,
        }
        _write_quietly(cached, orjson.dumps(document))
    return catalog


def _token_prices(raw_map: bytes) -> dict[str, list[float | None] | None]:
    """Each model of the map, and its per-token prices; None for a model it lists
    without any (which is no reason to look it up by another name)."""
    prices: dict[str, list[float | None] | None] = {}
    for model, entry in orjson.loads(raw_map).items():
        values = [_price(entry.get(key)) for key in _KEYS.values()] if isinstance(entry, dict) else []
        prices[model] = values if any(value is not None for value in values) else None
    return prices


def _price(value: object) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _map_path() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / _MAP_FILE
    return path if path.exists() else None


def _cache_file(map_path: Path) -> Path | None:
    """Where the prices of the map at `map_path` are kept: one file per copy of LiteLLM."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):  # no home folder (HOME unset, "~" left as it was)
        return None
    return Path(base) / "tollgate" / f"litellm-prices-{zlib.crc32(str(map_path).encode()):08x}.json"


def _write_quietly(path: Path, data: bytes) -> None:
    """Whole or not at all (a concurrent start reads the old file or the new one); a
    folder that cannot be written only means the next start parses the map again."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        pass


@lru_cache(maxsize=_LOOKUPS_KEPT)
def catalog_prices(model: str) -> ModelPrices | None:
    """The catalog's prices for `model`; a LiteLLM model string (`vendor/model`) is also
    looked up by its bare name, as most of the map's keys are."""
    catalog = _catalog()
    if catalog is None:
        return None
    prices = catalog.prices
    values = prices[model] if model in prices else prices.get(model.split("/", 1)[1]) if "/" in model else None
    if values is None:
        return None
    # repr is the shortest exact spelling of the float: 2.5e-06 -> Decimal("0.0000025")
    priced = [(kind, value) for kind, value in zip(_KEYS, values, strict=True) if value is not None]
    tokens = {kind: Decimal(repr(value)) * _PER_MILLION for kind, value in priced}
    return ModelPrices(tokens=TokenPrices(**tokens))


@lru_cache(maxsize=_LOOKUPS_KEPT)
def catalog_table(models: tuple[str, ...]) -> PriceTable:
    """The catalog restricted to `models` (all of which it must price)."""
    catalog = _catalog()
    assert catalog is not None  # it priced `models`
    return PriceTable(
        source="catalog",
        provider="litellm",
        effective=catalog.effective,
        url=f"https://github.com/BerriAI/litellm/blob/v{catalog.version}/model_prices_and_context_window.json",
        models={model: prices for model in models if (prices := catalog_prices(model))},
    )
