"""The endpoints' answers, in process: the headers every answer carries, failures
included, and `GET /v1/models/{id}`. The providers are real and point at a port
where nothing listens, so every upstream try fails to connect."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from proxy.config import parse_config
from proxy.http.app import create_app
from proxy.serving.gateway import GatewayFactory
from proxy.state import MemoryCounters

WEB_KEY = "sk-web-app-7d1f"
ADMIN_KEY = "adm-endpoints-test-51a0"

CONFIG = f"""
server:
  admin_key: {ADMIN_KEY}
ledger:
  url: sqlite:///${{LEDGER_DIR}}/ledger.db
  journal_dir: ${{LEDGER_DIR}}/journal
providers:
  openai:
    kind: openai
    base_url: http://127.0.0.1:9/v1
    api_key: sk-upstream-openai
    billing_owner: openai/org-test
    price_table: openai-official
  acme:
    kind: openai
    base_url: http://127.0.0.1:9/acme/v1
    api_key: sk-upstream-acme
    billing_owner: acme/acct-7
    price_table: openai-official
routes:
  gpt-image-2:
    owner: platform-team
    targets: [{{provider: openai, model: gpt-image-2}}]
    fallbacks: [{{provider: acme, model: gpt-image-2}}]
    retries: 0
  gpt-5.4-mini:
    targets: [{{provider: openai, model: gpt-5.4-mini}}]
keys:
  - {{id: web-app, key: {WEB_KEY}, team: growth, routes: [gpt-image-2]}}
"""


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    loaded = parse_config(CONFIG, {"LEDGER_DIR": str(tmp_path_factory.mktemp("ledger"))})
    factory = GatewayFactory(simulate_all=False, counters=MemoryCounters())
    with TestClient(create_app(lambda: factory.build(loaded))) as client:
        client.headers["authorization"] = f"Bearer {WEB_KEY}"
        yield client


def generate(client: TestClient, **headers: str):
    return client.post(
        "/v1/images/generations", json={"model": "gpt-image-2", "prompt": "a kite", "quality": "low"}, headers=headers
    )


def test_when_no_provider_can_be_reached_the_503_names_the_last_one_tried(client):
    response = generate(client)
    assert response.status_code == 503 and response.json()["error"]["code"] == "upstream_unreachable"
    assert response.headers["x-request-id"].startswith("req_")
    assert response.headers["x-tollgate-route"] == "gpt-image-2"
    assert response.headers["x-tollgate-provider"] == "acme"
    assert response.headers["x-tollgate-billing-owner"] == "acme/acct-7"
    assert response.headers["x-tollgate-attempts"] == "2"


def test_a_request_refused_before_any_try_says_it_took_none(client):
    response = client.post(
        "/v1/images/generations", json={"model": "gpt-image-2", "prompt": "a kite", "size": "1000x1000"}
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "size"
    assert response.headers["x-tollgate-route"] == "gpt-image-2"
    assert response.headers["x-tollgate-attempts"] == "0"
    assert "x-tollgate-provider" not in response.headers
    assert response.headers["x-request-id"].startswith("req_")


def test_an_estimate_carries_the_route_and_no_try(client):
    response = generate(client, **{"x-tollgate-estimate-only": "true"})
    assert response.status_code == 200
    assert response.headers["x-tollgate-route"] == "gpt-image-2"
    assert response.headers["x-tollgate-attempts"] == "0"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/models", 200),
        ("GET", "/healthz", 200),
        ("GET", "/readyz", 200),
        ("GET", "/metrics", 200),
        ("GET", "/v1/nowhere", 404),
        ("DELETE", "/v1/models", 405),
        ("GET", "/admin/requests", 403),
    ],
)
def test_every_answer_carries_a_request_id(client, method, path, status):
    response = client.request(method, path)
    assert response.status_code == status
    assert response.headers["x-request-id"].startswith("req_")
    assert len(response.headers.get_list("x-request-id")) == 1


def test_an_error_keeps_the_request_id_it_names(client):
    response = client.post("/v1/chat/completions", json={"model": "gpt-5.4-mini"})
    assert response.status_code == 403
    assert len(response.headers.get_list("x-request-id")) == 1


def test_a_model_this_key_may_use_is_retrieved_as_openais_model_object(client):
    response = client.get("/v1/models/gpt-image-2")
    assert response.status_code == 200
    assert response.json() == {"id": "gpt-image-2", "object": "model", "created": 0, "owned_by": "platform-team"}
    assert response.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize("model", ["gpt-5.4-mini", "gpt-9", "a/b"])
def test_a_model_that_is_unknown_or_not_this_keys_is_a_404_in_openais_shape(client, model):
    response = client.get(f"/v1/models/{model}")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert error["type"] == "invalid_request_error"
    assert f"The model '{model}' does not exist or you do not have access to it." in error["message"]


def test_retrieving_a_model_takes_a_client_key(client):
    response = client.get("/v1/models/gpt-image-2", headers={"authorization": "Bearer sk-wrong"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
