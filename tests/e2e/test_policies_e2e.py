"""The policies through a real `tollgate serve`, driven by the official SDK: each
refusal is OpenAI-shaped with the rule and what to change, reaches no upstream,
and is recorded in the ledger and the failure metric under its policy."""

from __future__ import annotations

import re
from decimal import Decimal

import httpx
import openai
import pytest

from .configs import ConfigFile, key, routed
from .harness import marker, marker_id, upstream_requests
from .test_admin_e2e import finished_row

ADMIN_KEY = "adm-policies-e2e"
KEYS = {name: f"sk-{name}-policy-e2e" for name in ("web", "validator", "limited", "frugal")}


def governed_config(simulator_url: str) -> ConfigFile:
    config = routed(simulator_url).with_server(admin_key=ADMIN_KEY)
    config.routes["gpt-image-2"]["max_request_usd"] = Decimal("0.10")
    return config.changed(
        keys=[
            key("web", KEYS["web"], "growth"),
            key("validator", KEYS["validator"], "growth", stage="validation"),
            key("limited", KEYS["limited"], "growth", rate_limits={"requests_per_minute": 2}),
            key("frugal", KEYS["frugal"], "thrift"),
        ],
        teams={"thrift": {"budgets": {"daily_usd": Decimal("0.02")}}},
    )


@pytest.fixture(scope="module")
def governed(simulator, start_proxy):
    return start_proxy(governed_config(simulator.url))


def client(proxy, key: str) -> openai.OpenAI:
    return proxy.client(api_key=KEYS[key])


def admin(proxy) -> httpx.Client:
    return httpx.Client(base_url=proxy.url, headers={"authorization": f"Bearer {ADMIN_KEY}"})


def failures(proxy, reason: str, policy: str) -> float:
    text = httpx.get(f"{proxy.url}/metrics").text
    pattern = rf'^tollgate_request_failures_total\{{[^}}]*policy="{policy}"[^}}]*reason="{reason}"[^}}]*\}} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, text, re.M))


def test_the_responses_guard_refuses_an_image_model_before_any_upstream_call(simulator, governed):
    prompt = f"draw a fox {marker()}"
    before = failures(governed, "policy_refused", "responses_model_guard")
    with pytest.raises(openai.BadRequestError) as refused:
        client(governed, "web").responses.create(model="gpt-image-2", input=prompt)
    error = refused.value
    assert error.status_code == 400 and error.code == "policy_refused" and error.param == "model"
    assert "image_generation" in error.message and "mainline model" in error.message
    assert upstream_requests(simulator, marker_id(prompt)) == []
    with admin(governed) as admin_client:
        row = finished_row(admin_client, error.response.headers["x-request-id"])
    assert (row["status"], row["error_type"], row["policy"], row["http_status"]) == (
        "error",
        "policy_refused",
        "responses_model_guard",
        400,
    )
    assert row["route"] == "gpt-image-2" and row["cost_usd"] == "0"
    assert failures(governed, "policy_refused", "responses_model_guard") == before + 1


def test_a_size_the_model_cannot_make_is_refused_naming_size(simulator, governed):
    prompt = f"a kite {marker()}"
    with pytest.raises(openai.BadRequestError) as refused:
        client(governed, "web").images.generate(model="gpt-image-2", prompt=prompt, size="1000x1000")
    assert refused.value.param == "size" and "divisible by 16" in refused.value.message
    assert upstream_requests(simulator, marker_id(prompt)) == []


def test_a_validation_key_makes_only_low_quality_single_images(governed):
    validator = client(governed, "validator")
    assert validator.images.generate(model="gpt-image-2", prompt="a kite", quality="low").data[0].b64_json
    with pytest.raises(openai.PermissionDeniedError) as refused:
        validator.images.generate(model="gpt-image-2", prompt="a kite", quality="medium")
    assert refused.value.param == "quality" and "validation stage" in refused.value.message


def test_a_request_over_the_routes_cost_ceiling_is_refused(governed):
    with pytest.raises(openai.BadRequestError) as refused:
        client(governed, "web").images.generate(model="gpt-image-2", prompt="a kite", quality="high")
    assert "`max_request_usd`" in refused.value.message and "$0.1 per request" in refused.value.message


def test_a_rate_limited_key_is_told_when_to_retry(governed):
    limited = client(governed, "limited")
    for _ in range(2):
        limited.chat.completions.create(model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.RateLimitError) as refused:
        limited.chat.completions.create(model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}])
    assert refused.value.code == "rate_limit_exceeded"
    assert 1 <= int(refused.value.response.headers["retry-after"]) <= 30
    assert failures(governed, "rate_limited", "rate_limits") >= 1


def test_a_team_budget_admits_requests_until_it_is_spent(governed):
    frugal = client(governed, "frugal")
    admitted = 0
    with pytest.raises(openai.RateLimitError) as refused:
        for _ in range(20):
            frugal.images.generate(model="gpt-image-2", prompt="a kite", quality="low", size="1024x1024")
            admitted += 1
    assert refused.value.code == "budget_exceeded" and "team 'thrift'" in refused.value.message
    assert admitted >= 1
    with admin(governed) as admin_client:
        finished_row(admin_client, refused.value.response.headers["x-request-id"])
        spend = admin_client.get("/admin/spend", params={"group_by": "team"}).json()
    spent = next(Decimal(row["cost_usd"]) for row in spend["rows"] if row["team"] == "thrift")
    one_image = spent / admitted
    assert spent <= Decimal("0.02") and spent + one_image > Decimal("0.02")  # nothing left for one more
    assert failures(governed, "budget_exceeded", "budgets") == 1
