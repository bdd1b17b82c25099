"""Exact costs on the right table, including the two traps the incumbent fell into:
image output tokens priced as text (LiteLLM 31142) and a per-image reseller table
applied at one flat rate whatever the size and quality (LiteLLM 37738)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from providers.answer_body import AnswerBody
from providers.types import Call, ImageSettings, JsonBody, Surface
from proxy.config import load_config, parse_config
from proxy.pricing import CATALOG_TABLE, Pricer, usd
from proxy.pricing.usage import Metered, usage_from_body

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pricer() -> Pricer:
    return Pricer(load_config(ROOT / "config.yaml", {}).config)


def test_official_gpt_image_2_usage_is_priced_per_token(pricer):
    usage = (Metered("gpt-image-2", text_input=50, image_output=196, images=1, size="1024x1024", quality="low"),)
    priced = pricer.price(usage, "gpt-image-2", "openai", "gpt-image-2")
    assert (priced.table, priced.source) == ("openai-official", "official")
    assert priced.usd == Decimal("0.00613")  # 50 x $5/M + 196 x $30/M
    assert [line.item for line in priced.cost.lines] == ["text_input tokens", "image_output tokens"]


def test_images_output_tokens_without_details_are_priced_at_the_image_rate(pricer):
    body = orjson.dumps(
        {
            "size": "1536x1024",
            "quality": "medium",
            "data": [{"b64_json": "AA"}],
            "usage": {
                "input_tokens": 23,
                "input_tokens_details": {"text_tokens": 23, "image_tokens": 0},
                "output_tokens": 1372,
                "total_tokens": 1395,
            },
        }
    )
    usage = usage_from_body(Surface.IMAGES_GENERATE, AnswerBody.of(body), model="gpt-image-2", image_model=None)
    priced = pricer.price(usage, "gpt-image-2", "openai", "gpt-image-2")
    assert priced.usd == Decimal("0.041275")  # not 0.013835, which the text-output rate would give


@pytest.mark.parametrize(
    ("size", "quality", "expected"),
    [
        ("1024x1024", "low", "0.009"),
        ("1536x1024", "low", "0.007"),
        ("1024x1536", "medium", "0.046"),
        ("1024x1024", "high", "0.25"),
    ],
)
def test_a_per_image_reseller_table_applies_the_actual_size_and_quality(pricer, size, quality, expected):
    usage = (Metered("gpt-image-2", text_input=30, image_output=999, images=2, size=size, quality=quality),)
    priced = pricer.price(usage, "gpt-image-2", "acme", "gpt-image-2")
    assert (priced.table, priced.source) == ("acme-2026-11", "provider")
    assert priced.usd == 2 * Decimal(expected)
    assert [line.as_dict()["item"] for line in priced.cost.lines] == [f"image {size} {quality}"]


def test_a_size_the_per_image_table_does_not_list_is_unpriced_with_the_reason(pricer):
    usage = (Metered("gpt-image-2", images=1, size="2048x2048", quality="low"),)
    priced = pricer.price(usage, "gpt-image-2", "acme", "gpt-image-2")
    assert priced.cost is None and "no per-image price for gpt-image-2 at size 2048x2048" in priced.unpriced


def test_an_unresolved_quality_is_priced_at_the_dearest(pricer):
    usage = (Metered("gpt-image-2", images=1, size="1024x1024", quality=None),)
    assert pricer.price(usage, "gpt-image-2", "acme", "gpt-image-2").usd == Decimal("0.25")


def test_responses_price_both_models_on_one_table(pricer):
    usage = (
        Metered("gpt-5.4", text_input=1000, cached_text_input=200, text_output=300),
        Metered("gpt-image-2", text_input=20, image_output=1756, images=1, size="1024x1024", quality="medium"),
    )
    on_acme = pricer.price(usage, "gpt-5.4", "acme", "gpt-5.4")
    assert on_acme.table == "acme-2026-11"
    # 1000 x 2.75/M + 200 x 0.275/M + 300 x 16.50/M + one medium 1024x1024 image at 0.06
    assert on_acme.usd == Decimal("0.00275") + Decimal("0.000055") + Decimal("0.00495") + Decimal("0.06")
    # OpenAI's official table does not list gpt-5.4: the whole call goes to the catalog, not a mix
    on_openai = pricer.price(usage, "gpt-5.4", "openai", "gpt-5.4")
    assert (on_openai.table, on_openai.source) == (CATALOG_TABLE, "catalog")


def test_the_catalog_converts_litellms_per_token_floats_exactly(pricer):
    priced = pricer.price(
        (Metered("gpt-5.4", text_input=1_000_000, text_output=1_000_000),), "gpt-5.4", "openai", "gpt-5.4"
    )
    assert priced.usd == Decimal("17.5")  # $2.50 + $15.00 per 1M in LiteLLM's map


def test_an_unpriced_route_and_an_unknown_model():
    config = parse_config(
        """
providers:
  p: {kind: openai, api_key: k, billing_owner: o}
routes:
  free: {targets: [{provider: p, model: house-model}], unpriced: true}
  mystery: {targets: [{provider: p, model: house-model}]}
""",
        {},
    ).config
    pricer = Pricer(config)
    usage = (Metered("house-model", text_input=10),)
    assert pricer.price(usage, "free", "p", "house-model").unpriced == "route 'free' is marked unpriced"
    assert "prices house-model" in pricer.price(usage, "mystery", "p", "house-model").unpriced


def test_an_azure_deployment_is_priced_by_the_routes_name():
    config = parse_config(
        """
providers:
  az: {kind: azure, base_url: https://x, api_version: v, api_key: k, billing_owner: o, price_table: openai-official}
routes:
  gpt-image-2: {targets: [{provider: az, model: my-deployment}]}
""",
        {},
    ).config
    usage = (Metered("my-deployment", image_output=196),)
    assert Pricer(config).price(usage, "gpt-image-2", "az", "my-deployment").usd == Decimal("0.00588")


def image_call(**settings) -> Call:
    fields = {"model": "gpt-image-2", "prompt": "a lighthouse at dawn", **settings}
    return Call(
        request_id="r",
        surface=Surface.IMAGES_GENERATE,
        model="gpt-image-2",
        stream=False,
        body=JsonBody(orjson.dumps(fields), fields),
        image=ImageSettings(size=settings.get("size"), quality=settings.get("quality"), n=settings.get("n", 1)),
    )


def test_the_estimate_counts_prompt_size_quality_and_n(pricer):
    estimate = pricer.estimate(
        image_call(size="1024x1536", quality="medium", n=3), "gpt-image-2", "openai", "gpt-image-2"
    )
    assert estimate.priced.usd == Decimal(5) * 5 / 1_000_000 + 3 * 1372 * Decimal(30) / 1_000_000
    assert estimate.billing_owner == "openai/org-acme" and estimate.failed_attempt_usd == 0
    on_acme = pricer.estimate(image_call(size="1024x1536", quality="medium", n=3), "gpt-image-2", "acme", "gpt-image-2")
    assert on_acme.priced.usd == 3 * Decimal("0.046")


def test_an_auto_quality_is_estimated_at_the_dearest(pricer):
    estimate = pricer.estimate(image_call(), "gpt-image-2", "openai", "gpt-image-2")
    assert estimate.priced.usd == Decimal(5) * 5 / 1_000_000 + 7024 * Decimal(30) / 1_000_000


def test_counts_no_upstream_makes_are_estimated_at_the_most_it_makes(pricer):
    """n and partial_images past OpenAI's limits are refused later; until then the
    estimate must stay a sum the ledger's integers hold."""
    call = image_call(size="1024x1024", quality="low", n=2**31 - 1)
    call = replace(call, image=replace(call.image, partial_images=2**31 - 1))
    estimate = pricer.estimate(call, "gpt-image-2", "openai", "gpt-image-2")
    assert estimate.priced.usd == Decimal(5) * 5 / 1_000_000 + 10 * (196 + 3 * 100) * Decimal(30) / 1_000_000


def test_usd_strings_are_plain_decimals():
    assert (usd(Decimal("0.00613000")), usd(Decimal("17.5000")), usd(Decimal("0E-9"))) == ("0.00613", "17.5", "0")


def test_check_refuses_a_route_nobody_prices_unless_it_is_marked_unpriced(tmp_path, capsys):
    from proxy.cli import main

    text = """
providers:
  p:
    kind: openai
    api_key: k
    billing_owner: o
routes:
  house: {targets: [{provider: p, model: house-model}]}
  free: {targets: [{provider: p, model: house-model}], unpriced: true}
  gpt-5.4: {targets: [{provider: p, model: gpt-5.4}]}
"""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    assert main(["check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "routes.house.targets[0]: provider 'p' (no price table) has no price for 'house-model'" in err
    assert "routes.free" not in err and "routes.gpt-5.4" not in err  # unpriced by choice; priced by the catalog


def test_a_litellm_model_string_is_found_in_the_catalog_by_its_bare_name(pricer):
    from proxy.pricing.catalog import catalog_prices

    assert catalog_prices("openai/gpt-5.4-mini") == catalog_prices("gpt-5.4-mini") is not None


# --- list prices: the same usage on the official table ------------------------------------------


def test_official_usage_is_its_own_list_price(pricer):
    usage = (Metered("gpt-image-2", text_input=50, image_output=196, images=1, size="1024x1024", quality="low"),)
    priced = pricer.price(usage, "gpt-image-2", "openai", "gpt-image-2")
    assert priced.listed == priced.cost


def test_a_resellers_usage_is_listed_at_the_official_price_for_the_same_tokens(pricer):
    usage = (Metered("gpt-image-2", text_input=30, image_output=1756, images=1, size="1024x1024", quality="medium"),)
    priced = pricer.price(usage, "gpt-image-2", "acme", "gpt-image-2")
    assert priced.usd == Decimal("0.06")  # acme's per-image price
    assert (priced.listed.table, priced.listed.source) == ("openai-official", "official")
    assert priced.listed.total_usd == Decimal("0.05283")  # 30 x $5/M + 1756 x $30/M: acme marks up 13.6%


def test_images_without_output_tokens_are_listed_at_the_official_per_image_price(pricer):
    usage = (Metered("gpt-image-2", text_input=30, images=2, size="1536x1024", quality="high"),)
    listed = pricer.price(usage, "gpt-image-2", "acme", "gpt-image-2").listed
    assert listed.total_usd == Decimal("0.00015") + 2 * Decimal("0.165")  # not $0 of output tokens
    assert [line.item for line in listed.lines] == ["image 1536x1024 high", "text_input tokens"]


def test_a_model_no_official_table_lists_has_no_list_price(pricer):
    usage = (Metered("gpt-5.4-mini", text_input=100, text_output=20),)
    assert pricer.price(usage, "gpt-5.4-mini", "acme", "gpt-5.4-mini").listed is None
    on_catalog = pricer.price(usage, "gpt-5.4-mini", "openai", "gpt-5.4-mini")
    assert on_catalog.source == "catalog" and on_catalog.listed is None  # a third party's copy is no list price


def test_a_configured_official_table_lists_the_models_it_prices():
    config = parse_config(
        """
price_tables:
  vendor-list:
    {source: official, provider: vendor, effective: 2026-11-01, url: https://vendor.example,
     models: {m: {tokens: {text_input: 2}}}}
  resold:
    {source: provider, provider: shop, effective: 2026-11-01, url: https://shop.example,
     models: {m: {tokens: {text_input: 3}}}}
providers:
  shop:
    {kind: openai_compatible, base_url: https://shop.example/v1, api_key: k, billing_owner: shop/1, price_table: resold}
routes:
  m: {targets: [{provider: shop, model: m}]}
""",
        {},
    ).config
    priced = Pricer(config).price((Metered("m", text_input=1_000_000),), "m", "shop", "m")
    assert (priced.usd, priced.listed.total_usd, priced.listed.table) == (Decimal(3), Decimal(2), "vendor-list")
