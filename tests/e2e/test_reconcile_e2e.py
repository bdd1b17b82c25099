"""`tollgate reconcile --from-api` against a live HTTP server: the simulator serves
OpenAI's organization Costs and Usage (images) endpoints from what it actually billed,
and the real proxy's ledger is compared with them. One provider's traffic matches to
the nano-dollar; the other's includes a stream cut short at `quality: auto`, which the
ledger can only cost at its estimate (the dearest quality) while the simulator billed
what it made: that day is off, and the cause is named."""

from __future__ import annotations

import contextlib
import subprocess
import uuid

import openai
import pytest

from . import configs
from .harness import Proxy, ledger_rows, marker, run_command
from .prometheus import poll


def config(simulator_url: str, clean: str, cut: str) -> configs.ConfigFile:
    """Two OpenAI organizations, each on an upstream path of its own."""
    return configs.ConfigFile(
        providers={
            "openai": configs.openai_on(simulator_url, clean, api_key="sk-up-openai", billing_owner="openai/org-clean"),
            "openai-eu": configs.openai_on(
                simulator_url, cut, api_key="sk-up-openai-eu", billing_owner="openai/org-eu"
            ),
        },
        routes={
            "gpt-image-2": configs.route(configs.target("openai", "gpt-image-2")),
            "image-eu": configs.route(configs.target("openai-eu", "gpt-image-2")),
        },
    )


def reconcile(proxy: Proxy, provider: str, *flags: str) -> subprocess.CompletedProcess:
    return run_command(
        proxy, "reconcile", "--provider", provider, "--from-api", *flags, env={"OPENAI_ADMIN_KEY": "sk-admin-x"}
    )


@pytest.fixture(scope="module")
def proxy(simulator, start_proxy) -> Proxy:
    # upstream names of their own: the session's simulator bills other tests' traffic too
    clean, cut = f"recon-{uuid.uuid4().hex[:8]}", f"recon-eu-{uuid.uuid4().hex[:8]}"
    proxy = start_proxy(config(simulator.url, clean, cut))
    client = proxy.client()
    for quality, size in (("low", "1024x1024"), ("medium", "1024x1024"), ("high", "1536x1024"), ("low", "1024x1536")):
        for route in ("gpt-image-2", "image-eu"):
            client.images.generate(model=route, prompt=f"a {quality} harbour", quality=quality, size=size)
    list(client.images.generate(model="gpt-image-2", prompt="a kite", quality="low", stream=True, partial_images=1))
    with contextlib.suppress(openai.APIError):  # cut short: the ledger has no usage for it
        list(
            client.images.generate(model="image-eu", prompt=f"cut {marker('cut_stream')}", quality="auto", stream=True)
        )
    poll(lambda: ledger_rows(proxy, "status <> 'started'") == 10, what="every row in the ledger")
    return proxy


def test_a_provider_whose_bill_matches_the_ledger_exits_0(proxy):
    result = reconcile(proxy, "openai")
    assert result.returncode == 0, result.stdout + result.stderr
    (line,) = [line.split() for line in result.stdout.splitlines() if " gpt-image-2 " in f" {line} "]
    # ledger requests = provider requests (5), and the costs equal to the provider's figure
    assert line[2] == line[3] == "5" and line[4] == line[5] and line[6] == "0" and line[7] == "+0.00%"
    assert "· input" in result.stdout and "· output" in result.stdout
    assert result.stdout.rstrip().endswith("1 day, each within 1%")
    assert "sk-admin-x" not in result.stdout + result.stderr


def test_a_stream_cut_short_puts_the_day_off_and_is_named_as_the_cause(proxy):
    result = reconcile(proxy, "openai-eu")
    assert result.returncode == 1, result.stdout + result.stderr
    (line,) = [line.split() for line in result.stdout.splitlines() if " gpt-image-2 " in f" {line} "]
    assert line[2] == line[3] == "5" and line[-1] == "OFF"  # the same requests; the ledger dearer
    assert float(line[6]) > 0
    assert "likely: 1 streamed or unreported row costed from the estimate, not usage" in result.stdout
    assert reconcile(proxy, "openai-eu", "--tolerance", "1000").returncode == 0
