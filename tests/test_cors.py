"""CORS for browsers: off unless `server.cors` is set; then Starlette's middleware
answers preflights for the configured origins, a refused one in OpenAI's shape, and
a reload changes it. The app runs in process; its one provider is the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from proxy.config import ConfigError, parse_config
from proxy.config.checks import load_checked
from proxy.http.app import create_app
from proxy.reload.reloader import Reloader
from proxy.serving.gateway import GatewayFactory
from proxy.state import MemoryCounters

APP_ORIGIN = "https://app.example.com"
ADMIN_KEY = "adm-cors-test-9e21"

CONFIG = f"""
server:
  admin_key: {ADMIN_KEY}
ledger:
  url: sqlite:///${{LEDGER_DIR}}/ledger.db
  journal_dir: ${{LEDGER_DIR}}/journal
providers:
  openai: {{kind: simulator, billing_owner: openai/org-test, price_table: openai-official}}
routes:
  gpt-5.4-mini:
    targets: [{{provider: openai, model: gpt-5.4-mini}}]
"""
CORS = f"""  cors:
    allow_origins: ["{APP_ORIGIN}", "http://localhost:5173"]
"""


def preflight(client: TestClient, origin: str, **headers: str):
    return client.options(
        "/v1/chat/completions",
        headers={"origin": origin, "access-control-request-method": "POST", **headers},
    )


@pytest.fixture
def serve(tmp_path: Path):
    """An app on `config_text`, with a reloader on its file."""
    started = []

    def start(config_text: str) -> tuple[TestClient, Path]:
        path = tmp_path / "config.yaml"
        path.write_text(config_text)
        env = {"LEDGER_DIR": str(tmp_path)}
        factory = GatewayFactory(simulate_all=False, counters=MemoryCounters())
        loaded = load_checked(path, env)
        client = TestClient(create_app(lambda: factory.build(loaded), reloader=Reloader(path, env, factory)))
        started.append(client.__enter__())
        return client, path

    yield start
    for client in started:
        client.__exit__(None, None, None)


def test_without_server_cors_a_preflight_is_refused_and_answers_carry_no_cors_headers(serve):
    client, _ = serve(CONFIG)
    response = preflight(client, APP_ORIGIN)
    assert response.status_code == 405
    assert "access-control-allow-origin" not in response.headers
    models = client.get("/v1/models", headers={"origin": APP_ORIGIN})
    assert models.status_code == 200 and "access-control-allow-origin" not in models.headers


def test_a_preflight_from_an_allowed_origin_is_answered_with_what_the_sdk_needs(serve):
    client, _ = serve(CONFIG.replace("server:\n", "server:\n" + CORS, 1))
    response = preflight(
        client, APP_ORIGIN, **{"access-control-request-headers": "authorization, content-type, x-stainless-os"}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-allow-headers"] == "authorization, content-type, x-stainless-os"
    assert response.headers["x-request-id"].startswith("req_")


def test_an_answer_to_an_allowed_origin_lets_its_script_read_tollgates_headers(serve):
    client, _ = serve(CONFIG.replace("server:\n", "server:\n" + CORS, 1))
    response = client.post(
        "/v1/chat/completions",
        json={"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers={"origin": APP_ORIGIN},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    exposed = response.headers["access-control-expose-headers"].split(", ")
    assert {"x-request-id", "x-tollgate-provider", "x-tollgate-cost-usd"} <= set(exposed)


def test_a_preflight_from_another_origin_is_a_400_in_openais_shape(serve):
    client, _ = serve(CONFIG.replace("server:\n", "server:\n" + CORS, 1))
    response = preflight(client, "https://evil.example")
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "cors_refused"
    assert "origin not allowed for origin 'https://evil.example'" in error["message"]
    assert "server.cors" in error["message"]


def test_headers_outside_allow_headers_are_refused(serve):
    narrow = CORS + '    allow_headers: ["authorization"]\n'
    client, _ = serve(CONFIG.replace("server:\n", "server:\n" + narrow, 1))
    assert preflight(client, APP_ORIGIN, **{"access-control-request-headers": "authorization"}).status_code == 200
    refused = preflight(client, APP_ORIGIN, **{"access-control-request-headers": "authorization, x-custom"})
    assert refused.status_code == 400 and "headers not allowed" in refused.json()["error"]["message"]


def test_a_reload_turns_cors_on(serve):
    client, path = serve(CONFIG)
    assert preflight(client, APP_ORIGIN).status_code == 405
    path.write_text(CONFIG.replace("server:\n", "server:\n" + CORS, 1))
    reloaded = client.post("/admin/reload", headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert reloaded.json()["result"] == "ok" and reloaded.json()["restart_required"] == []
    assert preflight(client, APP_ORIGIN).status_code == 200


@pytest.mark.parametrize("origin", ["https://app.example.com/", "app.example.com", "https://app.example.com/path"])
def test_an_origin_must_be_written_as_a_browser_sends_it(origin):
    text = CONFIG.replace("server:\n", f'server:\n  cors: {{allow_origins: ["{origin}"]}}\n', 1)
    with pytest.raises(ConfigError) as caught:
        parse_config(text, {"LEDGER_DIR": "/tmp"})
    (issue,) = caught.value.issues
    assert issue.location == "server.cors.allow_origins"
    assert f"'{origin}' is not an origin: write scheme://host[:port]" in issue.message
