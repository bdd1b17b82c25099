"""A `litellm` provider for Anthropic, billed on Anthropic's own list prices: its
table names the model as Anthropic's price page does (`claude-sonnet-4-5`), the
route names it as LiteLLM does (`anthropic/claude-sonnet-4-5`). Chat, a chat
stream, Responses and a Responses stream go through a real `tollgate serve` and
LiteLLM to a stand-in for Anthropic's Messages API, and each is priced on that
table, not on LiteLLM's catalog: headers and ledger rows name it, and carry the
exact cost of the usage Anthropic reported."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from proxy.cli import main

from .configs import ConfigFile, provider, route, target
from .fake_anthropic import API_KEY, FakeAnthropic
from .harness import CLIENT_KEY, Proxy

ADMIN = "adm-litellm-prices-5e1"
ROUTE = "claude"
# Anthropic's list price for Claude Sonnet 4.5, USD per 1M tokens (cache hits at a tenth of input).
LIST = {"input": Decimal("3.00"), "cache_read": Decimal("0.30"), "output": Decimal("15.00")}


def config(anthropic_url: str) -> ConfigFile:
    anthropic = provider(
        "litellm",
        anthropic_url,
        API_KEY,
        "anthropic/org-test",
        price_table="anthropic-list",
        verified={
            "owner": "Anthropic",
            "quota": "tier 4",
            "export_rights": "customer",
            "privacy": "zdr",
            "failed_call_billing": "none",
        },
    )
    return ConfigFile(
        server={"admin_key": "${TOLLGATE_ADMIN_KEY}"},
        price_tables={
            "anthropic-list": {
                "source": "official",
                "provider": "anthropic",
                "effective": dt.date(2025, 9, 29),
                "url": "https://www.anthropic.com/pricing#api",
                "models": {
                    "claude-sonnet-4-5": {
                        "tokens": {
                            "text_input": LIST["input"],
                            "cached_text_input": LIST["cache_read"],
                            "text_output": LIST["output"],
                        }
                    }
                },
            }
        },
        providers={"anthropic": anthropic},
        routes={ROUTE: route(target("anthropic", "anthropic/claude-sonnet-4-5"), retries=0)},
    )


@pytest.fixture(scope="module")
def anthropic() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic()
    yield server
    server.close()


@pytest.fixture(scope="module")
def proxy(anthropic, start_proxy) -> Proxy:
    return start_proxy(config(anthropic.url), env={"TOLLGATE_ADMIN_KEY": ADMIN})


def list_cost(usage: dict[str, int]) -> Decimal:
    """What Anthropic bills for a message's usage at its list price: input and output
    tokens at their rates, cache reads at the cache-hit rate."""
    return (
        usage["input_tokens"] * LIST["input"]
        + usage["cache_read_input_tokens"] * LIST["cache_read"]
        + usage["output_tokens"] * LIST["output"]
    ) / 1_000_000


def finished_row(proxy: Proxy, request_id: str) -> dict:
    deadline = time.monotonic() + 10
    while True:
        response = httpx.get(f"{proxy.url}/admin/requests/{request_id}", headers={"authorization": f"Bearer {ADMIN}"})
        if response.status_code == 200 and response.json()["status"] != "started":
            return response.json()
        assert time.monotonic() < deadline, response.text
        time.sleep(0.05)


def assert_priced_on_anthropics_list(proxy: Proxy, headers: httpx.Headers, usage: dict[str, int], *, streamed: bool):
    assert (headers["x-tollgate-price-table"], headers["x-tollgate-price-source"]) == ("anthropic-list", "official")
    expected = list_cost(usage)
    if not streamed:
        assert Decimal(headers["x-tollgate-cost-usd"]) == expected
    row = finished_row(proxy, headers["x-request-id"])
    assert row["status"] == "ok" and row["provider"] == "anthropic"
    assert (row["price_table"], row["price_source"], row["cost_basis"]) == ("anthropic-list", "official", "usage")
    assert Decimal(row["cost_usd"]) == expected
    assert (row["input_text_tokens"], row["cached_input_tokens"], row["output_text_tokens"]) == (
        usage["input_tokens"],
        usage["cache_read_input_tokens"],
        usage["output_tokens"],
    )


def test_chat_through_litellm_is_priced_on_the_vendors_table(anthropic, proxy):
    raw = proxy.client().chat.completions.with_raw_response.create(
        model=ROUTE, messages=[{"role": "user", "content": "Describe a lighthouse in one line."}]
    )
    assert raw.parse().choices[0].message.content == "The lighthouse keeps its light through the fog."
    sent = anthropic.requests[-1]
    assert sent["body"]["model"] == "claude-sonnet-4-5" and CLIENT_KEY not in str(sent["headers"])
    assert_priced_on_anthropics_list(proxy, raw.headers, anthropic.usages[-1], streamed=False)


def test_a_chat_stream_through_litellm_is_priced_on_the_vendors_table(anthropic, proxy):
    raw = proxy.client().chat.completions.with_raw_response.create(
        model=ROUTE, stream=True, messages=[{"role": "user", "content": "And a second line, streamed."}]
    )
    chunks = list(raw.parse())
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices).startswith(
        "The lighthouse"
    )
    assert anthropic.requests[-1]["body"]["stream"] is True
    assert_priced_on_anthropics_list(proxy, raw.headers, anthropic.usages[-1], streamed=True)


def test_responses_through_litellm_are_priced_on_the_vendors_table(anthropic, proxy):
    raw = proxy.client().responses.with_raw_response.create(model=ROUTE, input="Name three lighthouses.")
    assert raw.parse().output_text == "The lighthouse keeps its light through the fog."
    assert_priced_on_anthropics_list(proxy, raw.headers, anthropic.usages[-1], streamed=False)


def test_a_responses_stream_through_litellm_completes_and_is_priced_on_the_vendors_table(anthropic, proxy):
    raw = proxy.client().responses.with_raw_response.create(model=ROUTE, input="Name three more.", stream=True)
    events = list(raw.parse())
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert events[-1].response.output_text == "The lighthouse keeps its light through the fog."
    assert_priced_on_anthropics_list(proxy, raw.headers, anthropic.usages[-1], streamed=True)


def test_check_shows_the_table_that_prices_the_litellm_target(anthropic, proxy, monkeypatch, capsys):
    monkeypatch.setenv("TOLLGATE_ADMIN_KEY", ADMIN)
    monkeypatch.setenv("TOLLGATE_LEDGER_URL", "sqlite:///unused.db")
    assert main(["check", "--strict", "--config", str(proxy.config_path)]) == 0
    out = capsys.readouterr().out
    assert (
        "anthropic/anthropic/claude-sonnet-4-5  weight 1  billing anthropic/org-test  "
        "prices anthropic-list (official) as claude-sonnet-4-5"
    ) in out
    assert "litellm-catalog" not in out
