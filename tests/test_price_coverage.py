"""Which table prices a route target, decided once: the pricer and `tollgate check`
ask the same `PriceBook.table_for`, so what check shows is what bills. A `litellm`
target names its model as LiteLLM does (`anthropic/claude-sonnet-4-5`) and is found
in its provider's table under that string or the vendor's bare name."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from proxy.cli import main
from proxy.config import load_config, parse_config
from proxy.pricing import CATALOG_TABLE, Pricer
from proxy.pricing.book import listed_names
from proxy.pricing.coverage import target_pricing
from proxy.pricing.usage import Metered

ROOT = Path(__file__).resolve().parents[1]

ANTHROPIC_LIST = """
  anthropic-list:
    source: official
    provider: anthropic
    effective: 2025-09-29
    url: https://www.anthropic.com/pricing#api
    models:
      claude-sonnet-4-5: {tokens: {text_input: 3.00, cached_text_input: 0.30, text_output: 15.00}}
      anthropic.claude-sonnet-4-5-20250929-v1:0: {tokens: {text_input: 3.30, text_output: 16.50}}
      claude-router: {tokens: {text_input: 1, text_output: 2}}
"""
ANTHROPIC_PROVIDER = """
  anthropic:
    kind: litellm
    api_key: k
    billing_owner: anthropic/org-1
    price_table: anthropic-list
    verified: {owner: A, quota: q, export_rights: e, privacy: p, failed_call_billing: f}
"""
ANTHROPIC_ROUTES = """
  claude:
    targets: [{provider: anthropic, model: anthropic/claude-sonnet-4-5}]
  claude-on-bedrock:
    targets: [{provider: anthropic, model: bedrock/converse/anthropic.claude-sonnet-4-5-20250929-v1:0}]
  claude-router:
    targets: [{provider: anthropic, model: azure/my-claude-deployment}]
  claude-haiku:
    targets: [{provider: anthropic, model: anthropic/claude-haiku-4-5}]
"""


def config_text(tables: str = "", providers: str = "", routes: str = "") -> str:
    """The Anthropic config, with more tables, providers and routes."""
    return (
        f"price_tables:{ANTHROPIC_LIST}{tables}providers:{ANTHROPIC_PROVIDER}{providers}"
        f"routes:{ANTHROPIC_ROUTES}{routes}"
    )


ANTHROPIC = config_text()


@pytest.fixture(scope="module")
def anthropic_config():
    return parse_config(ANTHROPIC, {}).config


def test_a_litellm_model_string_is_listed_whole_then_without_each_prefix():
    assert listed_names("litellm", "anthropic/claude-sonnet-4-5", "claude") == (
        "anthropic/claude-sonnet-4-5",
        "claude-sonnet-4-5",
        "claude",
    )
    assert listed_names("litellm", "bedrock/converse/anthropic.claude-x-v1:0") == (
        "bedrock/converse/anthropic.claude-x-v1:0",
        "converse/anthropic.claude-x-v1:0",
        "anthropic.claude-x-v1:0",
    )
    assert listed_names("litellm", "azure/gpt-4o", "gpt-4o") == ("azure/gpt-4o", "gpt-4o")
    # A gateway speaking OpenAI's API names models its own way: no prefix is taken off
    assert listed_names("openai_compatible", "anthropic/claude-sonnet-4-5", "claude") == (
        "anthropic/claude-sonnet-4-5",
        "claude",
    )


def test_a_litellm_target_is_priced_on_its_providers_table_under_the_vendors_name(anthropic_config):
    usage = (Metered("anthropic/claude-sonnet-4-5", text_input=1234, cached_text_input=2048, text_output=56),)
    priced = Pricer(anthropic_config).price(usage, "claude", "anthropic", "anthropic/claude-sonnet-4-5")
    assert (priced.table, priced.source) == ("anthropic-list", "official")
    assert priced.usd == (1234 * Decimal("3.00") + 2048 * Decimal("0.30") + 56 * Decimal("15.00")) / 1_000_000
    assert priced.listed == priced.cost  # the vendor's own table is its list price


def test_a_bedrock_model_id_and_an_azure_deployment_are_found_too(anthropic_config):
    pricer = Pricer(anthropic_config)
    bedrock = "bedrock/converse/anthropic.claude-sonnet-4-5-20250929-v1:0"
    on_bedrock = pricer.price((Metered(bedrock, text_input=1_000_000),), "claude-on-bedrock", "anthropic", bedrock)
    assert (on_bedrock.table, on_bedrock.usd) == ("anthropic-list", Decimal("3.30"))
    deployment = "azure/my-claude-deployment"  # listed by the route's name
    on_azure = pricer.price((Metered(deployment, text_input=1_000_000),), "claude-router", "anthropic", deployment)
    assert (on_azure.table, on_azure.usd) == ("anthropic-list", Decimal(1))


def test_a_model_the_table_lists_under_no_name_is_priced_on_the_catalog(anthropic_config):
    usage = (Metered("anthropic/claude-haiku-4-5", text_input=10),)
    priced = Pricer(anthropic_config).price(usage, "claude-haiku", "anthropic", "anthropic/claude-haiku-4-5")
    assert (priced.table, priced.source) == (CATALOG_TABLE, "catalog")


def test_a_resellers_litellm_usage_is_listed_at_the_vendors_price_under_the_bare_name():
    model = "openrouter/anthropic/claude-sonnet-4-5"
    text = config_text(
        tables=f"""
  resold:
    source: provider
    provider: shop
    effective: 2025-10-01
    url: https://shop.example/prices
    models:
      {model}: {{tokens: {{text_input: 3.50, text_output: 17.50}}}}
""",
        providers="""
  shop:
    kind: litellm
    api_key: k
    billing_owner: shop/1
    price_table: resold
    verified: {owner: S, quota: q, export_rights: e, privacy: p, failed_call_billing: f}
""",
        routes=f"""
  resold-claude:
    targets: [{{provider: shop, model: {model}}}]
""",
    )
    priced = Pricer(parse_config(text, {}).config).price(
        (Metered(model, text_input=1_000_000),), "resold-claude", "shop", model
    )
    assert (priced.table, priced.usd) == ("resold", Decimal("3.50"))
    assert (priced.listed.table, priced.listed.total_usd) == ("anthropic-list", Decimal("3.00"))


@pytest.mark.parametrize(
    "config",
    [lambda: parse_config(ANTHROPIC, {}).config, lambda: load_config(ROOT / "config.yaml", {}).config],
    ids=["litellm", "example"],
)
def test_check_names_the_table_the_pricer_uses_for_every_target(config):
    config = config()
    pricer = Pricer(config)
    for target in target_pricing(config):
        usage = (Metered(target.model, text_input=1000),)
        priced = pricer.price(usage, target.route, target.provider, target.model)
        assert (priced.table, priced.source) == (target.table.name, target.table.source), target.location


def test_check_shows_the_table_that_prices_each_target_and_warns_about_the_catalog(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text(ANTHROPIC)
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    billing = "weight 1  billing anthropic/org-1"
    assert (
        f"anthropic/anthropic/claude-sonnet-4-5  {billing}  prices anthropic-list (official) as claude-sonnet-4-5"
        in out
    )
    assert f"anthropic/anthropic/claude-haiku-4-5  {billing}  prices litellm-catalog (catalog)" in out
    warning = next(line.strip() for line in out.splitlines() if line.strip().startswith("routes.claude-haiku"))
    assert warning == (
        "routes.claude-haiku.targets[0]: priced on litellm-catalog (catalog), a third party's copy of list prices: "
        "anthropic-list (provider 'anthropic') lists 'anthropic/claude-haiku-4-5' under none of "
        "'anthropic/claude-haiku-4-5', 'claude-haiku-4-5', 'claude-haiku'; add it to price_tables.anthropic-list "
        "under one of those names (`tollgate check --strict` refuses this)"
    )
    assert sum("litellm-catalog (catalog), a third party's copy" in line for line in out.splitlines()) == 1


def test_check_strict_refuses_every_target_priced_on_the_catalog(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    text = config_text(
        providers="""
  plain: {kind: openai, api_key: k, billing_owner: o}
""",
        routes="""
  house:
    targets: [{provider: plain, model: gpt-5.4-mini}]
    fallbacks: [{provider: anthropic, model: anthropic/claude-sonnet-4-5}]
  free: {targets: [{provider: plain, model: gpt-5.4}], unpriced: true}
""",
    )
    path.write_text(text)
    assert main(["check", "--strict", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: 2 error(s)" in err
    assert (
        "routes.claude-haiku.targets[0]: priced on litellm-catalog (catalog), a third party's copy of list prices: "
        "anthropic-list (provider 'anthropic') lists 'anthropic/claude-haiku-4-5' under none of"
    ) in err
    assert (
        "routes.house.targets[0]: priced on litellm-catalog (catalog), a third party's copy of list prices: "
        "provider 'plain' has no price table; give providers.plain a `price_table` that lists it"
    ) in err
    assert "routes.claude.targets[0]" not in err and "routes.house.fallbacks[0]" not in err
    assert "routes.free" not in err  # unpriced by choice: nothing is priced, from the catalog or otherwise
    assert main(["check", "--config", str(path)]) == 0  # without --strict, warnings only


def test_a_built_in_table_is_not_one_to_add_to(capsys):
    assert main(["check", "--strict", "--config", str(ROOT / "config.yaml")]) == 2
    err = capsys.readouterr().err
    assert (
        "routes.gpt-5.4.targets[0]: priced on litellm-catalog (catalog), a third party's copy of list prices: "
        "openai-official (provider 'openai') does not list 'gpt-5.4'; openai-official is built in: give "
        "providers.openai a `price_table` of your own that lists it"
    ) in err
