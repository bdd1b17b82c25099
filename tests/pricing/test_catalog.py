"""LiteLLM's price map as the catalog: only each model's per-token prices are kept,
and kept on disk per copy of the map, so a start-up does not parse the whole map
again; what a lookup answers is the same either way."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from proxy.pricing import catalog


@pytest.fixture
def a_map(tmp_path, monkeypatch) -> Iterator[Path]:
    """A small price map in place of LiteLLM's, and a cache folder of the test's own."""
    path = tmp_path / "litellm" / "model_prices_and_context_window_backup.json"
    path.parent.mkdir()
    path.write_bytes(
        orjson.dumps(
            {
                "sample_spec": "not a model",
                "gpt-x": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05, "mode": "chat"},
                "vendor/gpt-x": {"mode": "chat"},  # listed without prices: not priced, not looked up as gpt-x
                "image-y": {"output_cost_per_image_token": 4e-05, "max_tokens": 10},
                "free-z": {"input_cost_per_token": 0, "supports_vision": True},
            }
        )
    )
    monkeypatch.setattr(catalog, "_map_path", lambda: path)
    monkeypatch.setattr(catalog.importlib.metadata, "version", lambda name: "9.9.9")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _forget()
    yield path
    _forget()


def _forget() -> None:
    for cached in (catalog._catalog, catalog.catalog_prices, catalog.catalog_table):
        cached.cache_clear()


def _answers() -> dict[str, object]:
    names = ("gpt-x", "openai/gpt-x", "vendor/gpt-x", "image-y", "free-z", "sample_spec", "absent", "a/b/image-y")
    return {name: catalog.catalog_prices(name) for name in names}


def test_lookups_answer_the_same_from_the_map_and_from_the_cache(a_map, tmp_path):
    from_map = _answers()
    assert from_map["gpt-x"].tokens.text_input == Decimal("2.5")  # USD per 1M tokens, exactly
    assert from_map["gpt-x"].tokens.text_output == Decimal("10")
    assert from_map["openai/gpt-x"] == from_map["gpt-x"]  # a LiteLLM model string, by its bare name
    assert from_map["vendor/gpt-x"] is None and from_map["sample_spec"] is None and from_map["absent"] is None
    assert from_map["free-z"].tokens.text_input == 0
    assert from_map["image-y"].tokens.image_output == Decimal("40")
    assert [path.name for path in (tmp_path / "cache" / "tollgate").iterdir()] == [
        f"litellm-prices-{catalog.zlib.crc32(str(a_map).encode()):08x}.json"
    ]
    _forget()
    stat = a_map.stat()
    a_map.write_bytes(b"x" * stat.st_size)  # the same size and time: the cache answers, the map is not read
    os.utime(a_map, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _answers() == from_map


def test_a_changed_map_is_read_again(a_map):
    assert catalog.catalog_prices("gpt-x") is not None
    _forget()
    a_map.write_bytes(orjson.dumps({"other": {"input_cost_per_token": 1e-06}}))
    assert catalog.catalog_prices("gpt-x") is None
    assert catalog.catalog_prices("other").tokens.text_input == Decimal("1")


def test_without_a_writable_cache_folder_the_map_is_read_each_time(a_map, tmp_path, monkeypatch):
    # A file where the folder would be: nothing can be made there, as on a read-only root
    # (which the tests, run as root here, cannot make: root writes through permissions).
    (tmp_path / "blocked").write_text("a file, not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "blocked"))
    assert catalog.catalog_prices("gpt-x") is not None
    table = catalog.catalog_table(("gpt-x",))
    assert (table.source, table.provider, list(table.models)) == ("catalog", "litellm", ["gpt-x"])
    assert "/v9.9.9/" in table.url
    assert (tmp_path / "blocked").read_text() == "a file, not a folder"


def test_a_damaged_cache_file_is_made_again(a_map, tmp_path):
    before = _answers()
    (cached,) = (tmp_path / "cache" / "tollgate").iterdir()
    cached.write_bytes(b'{"source": ')
    _forget()
    assert _answers() == before
    assert orjson.loads(cached.read_bytes())["version"] == "9.9.9"
