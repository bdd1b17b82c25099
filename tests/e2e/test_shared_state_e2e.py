"""Two proxy processes sharing budgets and rate limits through the real Redis on
127.0.0.1:6379, under concurrent load at both: the budget is never overspent by
more than one request's estimate, and a rate limit holds across both."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import openai
import pytest
import redis

from .configs import key, routed
from .test_admin_e2e import finished_row

ADMIN_KEY = "adm-shared-state-e2e"
BUDGET_KEY = "sk-budgeted-shared"
LIMITED_KEY = "sk-limited-shared"
BUDGET_USD = Decimal("0.05")


@pytest.fixture
def replicas(simulator, start_proxy):
    prefix = f"tollgate-e2e-{uuid.uuid4().hex[:10]}"
    config = (
        routed(simulator.url)
        .with_server(admin_key=ADMIN_KEY)
        .changed(
            state={"url": "redis://127.0.0.1:6379/0", "prefix": prefix},
            keys=[
                key("budgeted", BUDGET_KEY, "studio"),
                key("limited", LIMITED_KEY, "chat", rate_limits={"requests_per_minute": 10}),
            ],
            teams={"studio": {"budgets": {"daily_usd": BUDGET_USD}}},
        )
    )
    yield start_proxy(config), start_proxy(config)
    with redis.Redis.from_url("redis://127.0.0.1:6379/0") as client:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)


def fire(proxies, key: str, count: int, request) -> list[object]:
    """`count` requests spread over both replicas, eight at a time."""
    clients = [proxy.client(api_key=key) for proxy in proxies]

    def one(index: int) -> object:
        try:
            return request(clients[index % len(clients)])
        except openai.APIStatusError as error:
            return error

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def test_a_team_budget_holds_across_two_replicas(replicas):
    outcomes = fire(
        replicas,
        BUDGET_KEY,
        40,
        lambda client: client.images.with_raw_response.generate(
            model="gpt-image-2", prompt="a lighthouse at dawn", quality="low", size="1024x1024"
        ),
    )
    admitted = [outcome for outcome in outcomes if not isinstance(outcome, openai.APIStatusError)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, openai.APIStatusError)]
    assert admitted and refused
    assert {error.code for error in refused} == {"budget_exceeded"}
    assert {raw.headers["x-tollgate-provider"] for raw in admitted} == {"openai"}
    # Both replicas took requests: each alone would have admitted the whole budget.
    ports = {raw.http_request.url.port for raw in admitted} | {error.request.url.port for error in refused}
    assert len(ports) == 2

    spent = sum(Decimal(raw.headers["x-tollgate-cost-usd"]) for raw in admitted)
    # Each replica keeps its own SQLite ledger: ask the one that answered.
    answered_by = next(proxy for proxy in replicas if proxy.url.endswith(f":{admitted[0].http_request.url.port}"))
    with httpx.Client(base_url=answered_by.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as admin:
        estimate = Decimal(finished_row(admin, admitted[0].headers["x-request-id"])["estimated_cost_usd"])
    assert spent <= BUDGET_USD + estimate
    assert spent + estimate > BUDGET_USD - estimate  # the budget was used, not refused early


def test_a_rate_limit_holds_across_two_replicas(replicas):
    outcomes = fire(
        replicas,
        LIMITED_KEY,
        30,
        lambda client: client.chat.completions.create(
            model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}]
        ),
    )
    refused = [outcome for outcome in outcomes if isinstance(outcome, openai.APIStatusError)]
    assert {error.status_code for error in refused} == {429}
    assert 10 <= 30 - len(refused) <= 11  # a minute's allowance; a token refills every 6 s
