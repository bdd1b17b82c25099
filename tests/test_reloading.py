"""Reloading a config in one process: a new config is validated before it replaces
the old one, unchanged providers carry over with their pools, a retired gateway's
other providers close only once its last request has ended, and the admin API
answers for it. Real configs, real providers (their pools are never used here)."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from starlette.datastructures import State
from starlette.testclient import TestClient

from proxy.config.checks import load_checked
from proxy.http.app import create_app
from proxy.reload.reloader import Reloader
from proxy.serving.gateway import GatewayFactory
from proxy.state import MemoryCounters
from proxy.telemetry.metrics import Metrics

ADMIN_KEY = "adm-reload-test-3c1f"

CONFIG = """
server:
  admin_key: ${ADMIN_KEY:-adm-reload-test-3c1f}
ledger:
  url: sqlite:///${LEDGER_DIR}/ledger.db
  journal_dir: ${LEDGER_DIR}/journal
providers:
  openai:
    kind: openai
    base_url: http://127.0.0.1:9/openai/v1
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
    targets: [{provider: openai, model: gpt-image-2}]
  gpt-5.4-mini:
    targets: [{provider: acme, model: gpt-5.4-mini}]
"""


METRICS = Metrics(CollectorRegistry())  # what the app's lifespan hands the reloader


def reloads(result: str) -> float:
    return METRICS.registry.get_sample_value("tollgate_config_reloads_total", {"result": result}) or 0.0


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"LEDGER_DIR": str(tmp_path)}


@pytest.fixture
async def serving(config_file, env):
    """A reloader serving `config_file`, as the app's lifespan runs it."""
    factory = GatewayFactory(simulate_all=False, counters=MemoryCounters())
    state = State()
    state.gateway = factory.build(load_checked(config_file, env))
    state.metrics = METRICS
    METRICS.publish_config(state.gateway.version, state.gateway.config)
    reloader = Reloader(config_file, env, factory)
    await reloader.start(state)
    yield reloader, state
    await reloader.stop()
    await state.gateway.aclose()


def is_closed(provider) -> bool:
    return provider._client.is_closed


async def test_a_reload_keeps_unchanged_providers_and_closes_the_others_when_their_requests_end(serving, config_file):
    reloader, state = serving
    old = state.gateway
    old.enter()  # a request still running on the old config
    config_file.write_text(
        CONFIG.replace("127.0.0.1:9/acme/v1", "127.0.0.1:9/acme-v2/v1").replace("gpt-5.4-mini}]", "gpt-5.4}]")
    )

    outcome = await reloader.reload("admin")

    new = state.gateway
    assert outcome.result == "ok" and new is not old
    assert (outcome.version, outcome.previous_version) == (new.version, old.version)
    assert new.providers["openai"] is old.providers["openai"]  # same settings: the same pool, still warm
    assert new.providers["acme"] is not old.providers["acme"]
    await asyncio.sleep(0.05)
    assert not is_closed(old.providers["acme"])  # its request is still running
    old.leave()
    for _ in range(100):
        if is_closed(old.providers["acme"]):
            break
        await asyncio.sleep(0.01)
    assert is_closed(old.providers["acme"])
    assert not is_closed(new.providers["openai"]) and not is_closed(new.providers["acme"])


async def test_a_provider_carried_through_two_reloads_closes_only_when_no_config_holds_it(serving, config_file):
    reloader, state = serving
    first = state.gateway
    first.enter()
    config_file.write_text(CONFIG.replace("gpt-5.4-mini}]", "gpt-5.4}]"))  # both providers carry over
    await reloader.reload("admin")
    second = state.gateway
    second.enter()
    without_openai = CONFIG.replace(
        "targets: [{provider: openai, model: gpt-image-2}]", "targets: [{provider: acme, model: gpt-image-2}]"
    )
    config_file.write_text(re.sub(r"  openai:\n(    .*\n)+", "", without_openai, count=1))
    await reloader.reload("admin")
    openai = first.providers["openai"]
    assert second.providers["openai"] is openai and "openai" not in state.gateway.providers

    first.leave()  # `second` still runs a request that may use openai's pool
    await asyncio.sleep(0.05)
    assert not is_closed(openai)
    second.leave()
    for _ in range(100):
        if is_closed(openai):
            break
        await asyncio.sleep(0.01)
    assert is_closed(openai)
    assert not is_closed(state.gateway.providers["acme"])


async def test_a_bad_config_is_refused_with_every_error_and_the_old_one_serves_on(serving, config_file):
    reloader, state = serving
    old = state.gateway
    failed_before = reloads("failed")
    config_file.write_text(
        CONFIG.replace("provider: acme, model", "provider: acmee, model").replace(
            "    billing_owner: acme/acct-7\n", ""
        )
    )

    outcome = await reloader.reload("sighup")

    assert outcome.result == "failed" and state.gateway is old
    assert outcome.version == old.version
    assert "routes.gpt-5.4-mini.targets[0].provider: unknown provider 'acmee'; did you mean 'acme'?" in outcome.errors
    assert "providers.acme.billing_owner: required, but missing" in outcome.errors
    assert reloads("failed") == failed_before + 1
    assert not is_closed(old.providers["acme"])


async def test_a_file_that_is_not_utf8_is_a_counted_refusal_logged_on_one_line(serving, config_file, caplog):
    reloader, state = serving
    old = state.gateway
    failed_before = reloads("failed")
    config_file.write_bytes(CONFIG.replace("openai/org-test", "caf\xe9/org-test").encode("latin-1"))

    with caplog.at_level(logging.INFO, logger="tollgate"):
        outcome = await reloader.reload("sighup")

    assert outcome.result == "failed" and state.gateway is old
    (error,) = outcome.errors
    assert error.startswith("line 12, column 23: not UTF-8 text: byte 0xe9 at offset ")
    assert reloads("failed") == failed_before + 1
    (logged,) = [record for record in caplog.records if record.name == "tollgate"]
    assert logged.getMessage() == "config reload refused; the previous config keeps serving"
    assert logged.exc_info is None and logged.errors == [error]


async def test_a_route_without_a_price_is_refused_as_at_start_up(serving, config_file):
    reloader, _ = serving
    config_file.write_text(CONFIG + "  house-model:\n    targets: [{provider: acme, model: house-model-1}]\n")
    outcome = await reloader.reload("admin")
    assert outcome.result == "failed"
    assert any(error.startswith("routes.house-model.targets[0]: provider 'acme'") for error in outcome.errors)


async def test_the_same_text_again_changes_nothing(serving):
    reloader, state = serving
    old = state.gateway
    outcome = await reloader.reload("admin")
    assert outcome.result == "unchanged" and state.gateway is old


async def test_settings_read_only_at_start_up_are_named(serving, config_file):
    reloader, _ = serving
    config_file.write_text(CONFIG.replace("server:\n", "server:\n  port: 4999\n", 1))
    outcome = await reloader.reload("admin")
    assert outcome.result == "ok" and outcome.restart_required == ("server.port",)


async def test_a_reload_publishes_the_new_version_to_metrics(serving, config_file):
    reloader, state = serving
    old = state.gateway.version
    config_file.write_text(CONFIG.replace("gpt-5.4-mini}]", "gpt-5.4}]"))
    outcome = await reloader.reload("watch")
    assert METRICS.registry.get_sample_value("tollgate_config_info", {"version": outcome.version}) == 1
    assert METRICS.registry.get_sample_value("tollgate_config_info", {"version": old}) == 0


async def test_with_watch_config_a_changed_file_reloads_by_itself(config_file, env):
    config_file.write_text(CONFIG.replace("server:\n", "server:\n  watch_config: true\n", 1))
    factory = GatewayFactory(simulate_all=False, counters=MemoryCounters())
    state = State()
    state.gateway = old = factory.build(load_checked(config_file, env))
    state.metrics = METRICS
    reloader = Reloader(config_file, env, factory)
    await reloader.start(state)
    try:
        config_file.write_text(config_file.read_text().replace("gpt-5.4-mini}]", "gpt-5.4}]"))
        for _ in range(200):
            if state.gateway is not old:
                break
            await asyncio.sleep(0.05)
        assert state.gateway is not old
        assert state.gateway.config.routes["gpt-5.4-mini"].targets[0].model == "gpt-5.4"
    finally:
        await reloader.stop()
        await state.gateway.aclose()


def test_a_provider_is_rebuilt_when_only_its_secret_changes(config_file, env):
    factory = GatewayFactory(simulate_all=False, counters=MemoryCounters())
    old = factory.build(load_checked(config_file, env))
    config_file.write_text(CONFIG.replace("sk-upstream-acme", "sk-upstream-acme-rotated"))
    new = factory.build(load_checked(config_file, env), previous=old)
    assert new.providers["acme"] is not old.providers["acme"]
    assert new.providers["openai"] is old.providers["openai"]


# --- through the admin API ------------------------------------------------------------------


@pytest.fixture
def admin(config_file, env):
    factory = GatewayFactory(simulate_all=False, counters=MemoryCounters())
    loaded = load_checked(config_file, env)
    app = create_app(lambda: factory.build(loaded), reloader=Reloader(config_file, env, factory))
    with TestClient(app) as client:
        client.headers["authorization"] = f"Bearer {ADMIN_KEY}"
        yield client


def test_post_admin_reload_swaps_the_config_that_new_requests_see(admin, config_file):
    before = admin.get("/readyz").json()["config_version"]
    config_file.write_text(
        CONFIG.replace(
            "  gpt-5.4-mini:\n", "  gpt-5.4:\n    targets: [{provider: acme, model: gpt-5.4}]\n  gpt-5.4-mini:\n"
        )
    )

    response = admin.post("/admin/reload")

    assert response.status_code == 200
    document = response.json()
    assert document["result"] == "ok" and document["previous_config_version"] == before
    assert admin.get("/readyz").json()["config_version"] == document["config_version"] != before
    assert "gpt-5.4" in [model["id"] for model in admin.get("/v1/models").json()["data"]]
    assert admin.get("/admin/config").json()["version"] == document["config_version"]


def test_post_admin_reload_refuses_a_bad_config_in_openais_shape_listing_every_error(admin, config_file):
    before = admin.get("/readyz").json()["config_version"]
    config_file.write_text(
        CONFIG.replace("provider: openai, model", "provider: opnai, model").replace("timeout", "x") + "extra: 1\n"
    )

    response = admin.post("/admin/reload")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "config_invalid"
    assert "unknown provider 'opnai'; did you mean 'openai'?" in error["message"]
    assert "extra: unknown key 'extra'" in error["message"]
    assert f"The previous config (version {before}) keeps serving" in error["message"]
    assert "sk-upstream" not in response.text
    assert admin.get("/readyz").json()["config_version"] == before


def test_post_admin_reload_refuses_a_file_that_is_not_utf8_as_config_invalid(admin, config_file):
    before = admin.get("/readyz").json()["config_version"]
    config_file.write_bytes(CONFIG.encode() + b"# \xff\xfe\n")

    response = admin.post("/admin/reload")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "config_invalid" and error["type"] == "invalid_request_error"
    assert "not UTF-8 text: byte 0xff at offset" in error["message"]
    assert admin.get("/readyz").json()["config_version"] == before


def test_post_admin_reload_takes_only_the_admin_key(admin):
    assert admin.post("/admin/reload", headers={"authorization": "Bearer sk-not-admin"}).status_code == 401
    assert admin.post("/admin/reload", headers={"authorization": ""}).status_code == 401
