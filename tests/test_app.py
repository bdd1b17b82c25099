"""The ASGI app: one place renders errors, in OpenAI's shape, and nothing
unexpected leaks to the client. Driven through Starlette's test client."""

from __future__ import annotations

import logging

import pytest
from starlette.testclient import TestClient

from providers.base import Provider, UpstreamReply
from providers.types import Call
from proxy.config import parse_config
from proxy.http.app import create_app
from proxy.serving.gateway import Gateway

CONFIG = """
ledger:
  url: sqlite:///${LEDGER_DIR}/ledger.db
  journal_dir: ${LEDGER_DIR}/journal
providers:
  broken:
    kind: openai
    api_key: sk-upstream-secret
    billing_owner: someone
routes:
  gpt-5.4-mini:
    targets: [{provider: broken, model: gpt-5.4-mini}]
"""


class ExplodingProvider(Provider):
    """A provider with a bug: it raises something no provider should."""

    async def send(self, call: Call, model: str, timeout_s: float) -> UpstreamReply:
        raise RuntimeError("unexpected state, key=sk-upstream-secret")


@pytest.fixture
def client(tmp_path):
    loaded = parse_config(CONFIG, {"LEDGER_DIR": str(tmp_path)})
    app = create_app(lambda: Gateway(loaded, {"broken": ExplodingProvider("broken")}, simulated={}))
    with TestClient(app) as client:
        yield client


def test_an_unexpected_error_is_a_500_in_openais_shape_without_its_details(client, caplog):
    with caplog.at_level(logging.ERROR, logger="tollgate"):
        response = client.post("/v1/chat/completions", json={"model": "gpt-5.4-mini", "messages": []})
    assert response.status_code == 500
    error = response.json()["error"]
    request_id = response.headers["x-request-id"]
    assert error["type"] == "server_error" and error["code"] == "internal_error"
    assert request_id in error["message"]
    assert "sk-upstream-secret" not in response.text and "Traceback" not in response.text
    logged = [r for r in caplog.records if getattr(r, "request_id", None) == request_id]
    assert logged and logged[0].exc_info  # the details are in the server's log, with the id


def test_errors_carry_the_request_id_and_route(client):
    response = client.post("/v1/images/generations", json={"model": "gpt-5.4-mini", "prompt": "x", "n": "two"})
    assert response.status_code == 400
    assert response.headers["x-request-id"].startswith("req_")


def test_readiness_reports_the_config_version(client):
    ready = client.get("/readyz")
    assert ready.status_code == 200 and len(ready.json()["config_version"]) == 12


def test_multipart_is_only_for_edits(client):
    response = client.post("/v1/chat/completions", data={"model": "gpt-5.4-mini"}, files={"f": ("a", b"b")})
    assert response.status_code == 400
    assert "multipart is for /v1/images/edits" in response.json()["error"]["message"]


def test_a_non_numeric_timeout_header_is_a_400(client):
    response = client.post(
        "/v1/chat/completions", json={"model": "gpt-5.4-mini"}, headers={"x-tollgate-timeout-s": "soon"}
    )
    assert response.status_code == 400 and "x-tollgate-timeout-s" in response.json()["error"]["message"]
