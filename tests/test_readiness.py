"""Readiness follows the state store: while the Redis that budgets and rate limits
need cannot be reached, /readyz answers 503 and says why, and requests that need
it are refused with 503 `state_unavailable`; a config whose policies keep no
counters stays ready. The outage is real: a TCP relay to the shared Redis, cut."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from proxy.config import parse_config
from proxy.http.app import create_app
from proxy.serving.gateway import Gateway
from proxy.state.redis import RedisCounters

from .e2e.tcp_relay import TcpRelay

ROUTES = """
ledger: {enabled: false}
providers:
  openai: {kind: openai, api_key: k, billing_owner: openai/org, price_table: openai-official}
routes:
  gpt-image-2:
    targets: [{provider: openai, model: gpt-image-2}]
"""
BUDGETED = ROUTES + "keys:\n  - {id: web-app, key: sk-web, team: growth, budgets: {daily_usd: 1}}\n"
OPEN = ROUTES


@pytest.fixture
def relay() -> Iterator[TcpRelay]:
    relay = TcpRelay(6379)
    yield relay
    relay.close()


def serve(text: str, relay: TcpRelay) -> TestClient:
    counters = RedisCounters(f"redis://127.0.0.1:{relay.port}/0", prefix=f"tollgate-test-{uuid.uuid4().hex[:12]}")
    loaded = parse_config(text, {})
    return TestClient(create_app(lambda: Gateway(loaded, {}, simulated={}, counters=counters), state=counters))


def until(check, timeout_s: float = 5) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def failures(client: TestClient, reason: str) -> float:
    metrics = client.app.state.tollgate.metrics
    return metrics.failures.labels("gpt-image-2", "openai", reason, "")._value.get()


def test_readiness_and_refusals_follow_the_state_store(relay):
    with serve(BUDGETED, relay) as client:
        assert client.get("/readyz").status_code == 200
        relay.cut()
        until(lambda: client.get("/readyz").status_code == 503)
        ready = client.get("/readyz").json()
        assert ready["reason"] == "state_unavailable" and "state store (state.url)" in ready["message"]
        assert "6379" not in str(ready) and str(relay.port) not in str(ready)  # no address of the store

        before = failures(client, "state_unavailable")
        response = client.post(
            "/v1/images/generations",
            json={"model": "gpt-image-2", "prompt": "a kite", "quality": "low"},
            headers={"authorization": "Bearer sk-web"},
        )
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("server_error", "state_unavailable")
        assert "cannot reach its state store" in error["message"]
        assert failures(client, "state_unavailable") == before + 1

        relay.restore()
        until(lambda: client.get("/readyz").status_code == 200)


def test_a_config_without_counters_does_not_depend_on_the_store(relay):
    relay.cut()
    with serve(OPEN, relay) as client:
        time.sleep(1.2)  # a health check has run
        assert client.get("/readyz").status_code == 200
