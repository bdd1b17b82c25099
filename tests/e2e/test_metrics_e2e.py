"""/metrics from real proxies: two workers' counters summed whichever worker is
scraped, and no secret in the metrics or the access log."""

from __future__ import annotations

import re

import httpx
import orjson

from .configs import routed
from .harness import ACME_UPSTREAM_KEY, CLIENT_KEY, OPENAI_UPSTREAM_KEY


def requests_total(metrics_text: str) -> float:
    return sum(float(value) for value in re.findall(r"^tollgate_requests_total\{[^}]*\} (\S+)$", metrics_text, re.M))


def test_two_workers_counters_are_summed_whoever_answers_the_scrape(simulator, start_proxy):
    proxy = start_proxy(routed(simulator.url), "--workers", "2")
    sent = 24
    for _ in range(sent):  # a new connection each time, so both workers serve some
        with httpx.Client() as client:
            response = client.post(
                f"{proxy.url}/v1/chat/completions",
                json={"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert response.status_code == 200
    scrapes = []
    for _ in range(8):
        with httpx.Client() as client:
            scrapes.append(requests_total(client.get(f"{proxy.url}/metrics").text))
    assert scrapes == [sent] * 8


def test_metrics_and_access_log_name_the_request_but_hold_no_secret(simulator, start_proxy):
    proxy = start_proxy(routed(simulator.url))
    raw = proxy.client().images.with_raw_response.generate(model="gpt-image-2", prompt="a kite", quality="low")
    request_id = raw.headers["x-request-id"]
    metrics_text = httpx.get(f"{proxy.url}/metrics").text
    assert 'tollgate_spend_usd_total{billing_owner="openai/org-test"' in metrics_text
    lines = [orjson.loads(line) for line in proxy.log().splitlines() if line.startswith("{")]
    (access,) = [line for line in lines if line.get("logger") == "tollgate.access" and line["request_id"] == request_id]
    assert (access["route"], access["provider"], access["status"]) == ("gpt-image-2", "openai", 200)
    assert access["price_table"] == "openai-official" and float(access["cost_usd"]) > 0
    for secret in (CLIENT_KEY, OPENAI_UPSTREAM_KEY, ACME_UPSTREAM_KEY):
        assert secret not in metrics_text and secret not in proxy.log()


def test_metrics_can_be_switched_off(simulator, start_proxy):
    proxy = start_proxy(routed(simulator.url).with_server(metrics=False))
    assert httpx.get(f"{proxy.url}/metrics").status_code == 404
