"""The example config, and copies of it that each break one launch rule, for the
tests of `tollgate launch-check`."""

from __future__ import annotations

from pathlib import Path

EXAMPLE = (Path(__file__).resolve().parents[1] / "config.yaml").read_text()
IMAGE_ROUTE_OWNER = (
    "  gpt-image-2:                             # image generation and edits\n    owner: platform-team\n"
)


def replaced(text: str, old: str, new: str) -> str:
    assert old in text, f"the example config no longer has {old!r}"
    return text.replace(old, new, 1)


def without_route_owner() -> str:
    return replaced(EXAMPLE, IMAGE_ROUTE_OWNER, IMAGE_ROUTE_OWNER.replace("    owner: platform-team\n", ""))


def without_verified() -> str:
    """acme, a reseller, without its `verified:` record. The provider_verification policy,
    which would refuse the config at load, is off: the launch check must catch it anyway."""
    verified = EXAMPLE[EXAMPLE.index("    verified:\n") : EXAMPLE.index("\nroutes:")]
    text = replaced(EXAMPLE, verified, "")
    return text + "\npolicies:\n  provider_verification: {enabled: false}\n"


def with_price_table_missing_image_input() -> str:
    """openai priced on a table that has no image input price: the usage of an edit has image input tokens."""
    table = """price_tables:
  openai-negotiated:
    source: provider
    provider: openai
    effective: 2026-11-01
    url: https://contracts.example/openai-2026
    models:
      gpt-image-2:
        tokens: {text_input: 5.00, image_output: 30.00}
"""
    text = replaced(EXAMPLE, "price_tables:\n", table)
    return replaced(text, "price_table: openai-official ", "price_table: openai-negotiated")


def with_ceiling(usd: str) -> str:
    return replaced(EXAMPLE, "    max_request_usd: 0.50\n", f"    max_request_usd: {usd}\n")
