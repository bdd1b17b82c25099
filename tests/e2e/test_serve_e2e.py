"""`tollgate serve` as a user runs it: the example config on the simulator,
graceful shutdown, client keys, other provider kinds, several workers."""

from __future__ import annotations

import hashlib
import signal
import socket
import threading

import openai
import pytest

from .configs import VERIFIED, ConfigFile, key, provider, route, routed, target
from .harness import ROOT, eventually, marker, requests_in_flight, upstream_requests


def test_the_example_config_serves_on_simulated_upstreams_and_says_so(start_proxy):
    proxy = start_proxy(ROOT.joinpath("config.yaml").read_text(), "--simulate-upstreams")
    client = proxy.client()
    raw = client.images.with_raw_response.generate(model="gpt-image-2", prompt="a lighthouse", quality="low")
    assert raw.parse().data[0].b64_json and raw.headers["x-tollgate-provider"] == "openai"
    reply = client.chat.completions.create(model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    vectors = client.embeddings.with_raw_response.create(model="text-embedding-3-small", input="a lighthouse")
    assert vectors.parse().data[0].embedding
    assert vectors.headers["x-tollgate-price-table"] == "openai-official"
    assert vectors.headers["x-tollgate-price-source"] == "official"
    log = proxy.log()
    assert "SIMULATED UPSTREAMS" in log and "openai: --simulate-upstreams" in log
    assert "The simulator listens on http://127.0.0.1:" in log and "simulator: http" not in log
    assert "the proxy is OPEN" in log


def test_a_provider_with_an_empty_key_is_simulated_loudly(start_proxy):
    proxy = start_proxy(ROOT.joinpath("config.yaml").read_text(), env={"OPENAI_API_KEY": "", "ACME_API_KEY": ""})
    proxy.client().images.generate(model="gpt-image-2", prompt="a lighthouse", quality="low")
    assert "openai: its api_key is empty" in proxy.log() and "acme: its api_key is empty" in proxy.log()


def test_a_bad_config_is_refused_with_every_error(start_proxy):
    proxy = start_proxy("routes: {}\nproviders: {x: {kind: openai}}\n", ready=False)
    assert proxy.process.wait(15) == 2
    log = proxy.log()
    assert "providers.x.billing_owner: required, but missing" in log
    assert "routes: Dictionary should have at least 1 item" in log


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_busy_port_is_one_clear_line_and_exit_1_before_anything_says_serving(simulator, start_proxy, workers):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        proxy = start_proxy(routed(simulator.url), "--workers", workers, port=port, ready=False)
        assert proxy.process.wait(30) == 1
    assert proxy.log().strip() == f"cannot listen on 127.0.0.1:{port}: address already in use"


def test_sigterm_lets_requests_in_flight_finish(simulator, start_proxy):
    proxy = start_proxy(routed(simulator.url))
    outcome = {}

    def slow_request():
        try:
            reply = proxy.client().chat.completions.create(
                model="gpt-5.4-mini", messages=[{"role": "user", "content": f"slow {marker(delay=3)}"}]
            )
            outcome["content"] = reply.choices[0].message.content
        except Exception as error:  # the assertion below reports it
            outcome["error"] = error

    worker = threading.Thread(target=slow_request)
    worker.start()
    assert eventually(lambda: requests_in_flight(proxy) == 1)  # arrived: a request not yet there would be refused
    proxy.process.send_signal(signal.SIGTERM)
    worker.join(10)
    assert "error" not in outcome and outcome["content"]
    assert proxy.process.wait(10) == 0


def with_keys(simulator_url: str) -> ConfigFile:
    batch_digest = hashlib.sha256(b"sk-batch-key").hexdigest()
    web_app = key("web-app", "${WEB_APP_KEY}", "growth", routes=["gpt-image-2"])
    return routed(simulator_url).changed(keys=[web_app, {"id": "batch", "key_sha256": batch_digest, "team": "data"}])


def test_with_keys_configured_only_known_keys_get_through(simulator, start_proxy):
    proxy = start_proxy(with_keys(simulator.url), env={"WEB_APP_KEY": "sk-web-app-key"})
    for bad in ("sk-wrong", "sk-web-app-keyX"):
        with pytest.raises(openai.AuthenticationError) as caught:
            proxy.client(api_key=bad).images.generate(model="gpt-image-2", prompt="x", quality="low")
        assert caught.value.code == "invalid_api_key" and bad not in caught.value.message
    web = proxy.client(api_key="sk-web-app-key")
    assert web.images.generate(model="gpt-image-2", prompt="x", quality="low").data
    with pytest.raises(openai.PermissionDeniedError):
        web.chat.completions.create(model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}])
    assert [model.id for model in web.models.list()] == ["gpt-image-2"]
    batch = proxy.client(api_key="sk-batch-key")
    assert batch.chat.completions.create(model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}]).choices
    assert "sk-web-app-key" not in proxy.log() and "sk-batch-key" not in proxy.log()


def other_kinds(simulator_url: str) -> ConfigFile:
    """Azure and LiteLLM on the simulator; the ledger where serve puts it by default."""
    azure = provider(
        "azure", f"{simulator_url}/azure-east", "sk-azure-upstream", "azure/sub-1", api_version="2025-04-01-preview"
    )
    vendor = provider(
        "litellm",
        f"{simulator_url}/vendor/v1",
        "sk-vendor-upstream",
        "vendor/acct-9",
        verified={**VERIFIED, "owner": "V", "failed_call_billing": "f"},
    )
    return ConfigFile(
        ledger={},
        providers={"azure-east": azure, "vendor": vendor},
        routes={
            "gpt-image-2": route(target("azure-east", "image-deployment")),
            "claude-like": route(target("vendor", "openai/gpt-5.4-mini")),
            "vendor-embeddings": route(target("vendor", "openai/text-embedding-3-small")),
        },
    )


def test_azure_gets_its_deployment_url_and_api_key_header(simulator, start_proxy):
    proxy = start_proxy(other_kinds(simulator.url))
    prompt = f"a bridge {marker()}"
    result = proxy.client().images.generate(model="gpt-image-2", prompt=prompt, quality="low")
    assert result.data[0].b64_json
    (seen,) = upstream_requests(simulator, prompt.split("id=")[1][:12])
    assert seen["path"] == "/azure-east/openai/deployments/image-deployment/images/generations"
    assert seen["query"] == "api-version=2025-04-01-preview"
    assert seen["headers"]["api-key"] == "sk-azure-upstream" and "authorization" not in seen["headers"]


def test_litellm_reaches_a_vendor_for_chat_streams_and_embeddings(simulator, start_proxy):
    proxy = start_proxy(other_kinds(simulator.url))
    client = proxy.client()
    text = f"hello vendor {marker()}"
    reply = client.chat.completions.create(model="claude-like", messages=[{"role": "user", "content": text}])
    assert "hello vendor" in reply.choices[0].message.content
    (seen,) = upstream_requests(simulator, text.split("id=")[1][:12])
    assert seen["upstream"] == "vendor" and seen["headers"]["authorization"] == "Bearer sk-vendor-upstream"
    chunks = list(
        client.chat.completions.create(
            model="claude-like", messages=[{"role": "user", "content": "stream please"}], stream=True
        )
    )
    assert "stream please" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    vectors = client.embeddings.create(model="vendor-embeddings", input="x", dimensions=4)
    assert len(vectors.data[0].embedding) == 4


def test_litellm_relays_a_vendors_client_error(simulator, start_proxy):
    proxy = start_proxy(other_kinds(simulator.url))
    with pytest.raises(openai.BadRequestError):
        proxy.client().chat.completions.create(
            model="claude-like", messages=[{"role": "user", "content": f"no {marker('moderation')}"}]
        )


def test_several_workers_serve_together(simulator, start_proxy):
    proxy = start_proxy(routed(simulator.url), "--workers", "2")
    client = proxy.client()
    for _ in range(6):
        assert client.chat.completions.create(
            model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}]
        ).choices
    assert proxy.stop() == 0
