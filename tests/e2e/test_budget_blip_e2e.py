"""Budgets through a state-store blip, on a real `tollgate serve` and a real Redis,
driven by the official SDK (issue 11, items 4 and 5b).

Item 4: eight requests are in flight when Redis dies. They still finish (200),
their settles wait in the proxy, and within ten seconds of Redis coming back the
budget's counter equals the ledger's spend; meanwhile `/readyz` answers 503 and
requests that need the store get 503 `state_unavailable`, counted under that
reason. Redis here is a private `redis-server` on its own port, with an
append-only file, so a restart keeps its data as a production Redis would: the
shared one on 6379 is never stopped.

Item 5b: requests that a budget refuses take nothing from the rate limit.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest
import redis

from .configs import key, routed
from .harness import Proxy, free_port, marker, marker_id, upstream_requests

ADMIN_KEY = "adm-budget-blip-e2e"
STUDIO_KEY = "sk-studio-blip-e2e"
FRUGAL_KEY = "sk-frugal-blip-e2e"
IN_FLIGHT = 8


class PrivateRedis:
    """A redis-server of the test's own, which it may kill and start again on the same
    port and data: an append-only file synced at every write, as a durable Redis keeps."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._folder = folder
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--dir", str(self._folder), "--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        self._process = subprocess.Popen(
            command, stdout=(self._folder / "redis.log").open("ab"), stderr=subprocess.STDOUT
        )
        until(lambda: self._answers(), timeout_s=10)

    def kill(self) -> None:
        assert self._process is not None
        self._process.kill()
        self._process.wait(10)

    def _answers(self) -> bool:
        try:
            with redis.Redis(port=self.port, socket_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


def until(check: Callable[[], bool], *, timeout_s: float) -> float:
    """Wait for `check`; how long it took."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout_s, f"not within {timeout_s} s"
        time.sleep(0.1)
    return time.monotonic() - started


def failures(proxy: Proxy, reason: str) -> float:
    text = httpx.get(f"{proxy.url}/metrics").text
    pattern = rf'^tollgate_request_failures_total\{{[^}}]*reason="{reason}"[^}}]*\}} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, text, re.M))


def ledger_spend(proxy: Proxy) -> Decimal:
    """What the ledger says the team spent, every answered request included."""
    with httpx.Client(base_url=proxy.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as admin:
        document = admin.get("/admin/spend", params={"group_by": "team"}).json()
    return sum((Decimal(row["cost_usd"]) for row in document["rows"] if row["team"] == "studio"), Decimal(0))


def counted_spend(client: openai.OpenAI) -> Decimal:
    """What the budget's counter holds (spent and in flight), as the proxy itself reports
    it: a request too dear for any budget is refused with the figure in its message."""
    with pytest.raises(openai.RateLimitError) as refused:
        client.images.generate(model="gpt-image-2", prompt="a mural", quality="high", size="1024x1536", n=10)
    assert refused.value.code == "budget_exceeded"
    return Decimal(re.search(r"spent and in flight: \$([0-9.]+)", refused.value.message)[1])


def chat(client: openai.OpenAI, text: str) -> object:
    """A chat request: estimated at its longest answer, it costs far less, so a hold
    left reserved shows against the ledger."""
    messages = [{"role": "user", "content": text}]
    return client.chat.completions.with_raw_response.create(model="gpt-5.4-mini", messages=messages)


def test_budget_counters_converge_to_the_ledger_after_redis_dies_mid_load(simulator, start_proxy, private_redis):
    config = (
        routed(simulator.url)
        .with_server(admin_key=ADMIN_KEY)
        .changed(
            state={"url": private_redis.url, "prefix": "tollgate-blip"},
            keys=[key("studio-app", STUDIO_KEY, "studio")],
            teams={"studio": {"budgets": {"daily_usd": Decimal("1.00")}}},
        )
    )
    proxy = start_proxy(config)
    try:
        converge_after_a_blip(proxy, proxy.client(api_key=STUDIO_KEY), simulator, private_redis)
    finally:
        proxy.stop()  # before the test's Redis goes for good


def converge_after_a_blip(proxy: Proxy, client: openai.OpenAI, simulator, private_redis: PrivateRedis) -> None:
    for _ in range(3):
        assert chat(client, "hello").status_code == 200
    assert client.images.generate(model="gpt-image-2", prompt="a lighthouse", quality="low", size="1024x1024").data

    slow = f"hello, slowly {marker(delay=4)}"
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        in_flight = [pool.submit(chat, client, slow) for _ in range(IN_FLIGHT)]
        # Each has passed the budget (its estimate is reserved) and waits on the upstream.
        until(lambda: len(upstream_requests(simulator, marker_id(slow))) == IN_FLIGHT, timeout_s=10)
        private_redis.kill()

        until(lambda: httpx.get(f"{proxy.url}/readyz").status_code == 503, timeout_s=5)
        ready = httpx.get(f"{proxy.url}/readyz").json()
        assert ready["reason"] == "state_unavailable" and "unreachable" in ready["message"]
        for _ in range(3):
            with pytest.raises(openai.InternalServerError) as refused:
                chat(client, "hello again")
            assert (refused.value.status_code, refused.value.code) == (503, "state_unavailable")
        assert [future.result().status_code for future in in_flight] == [200] * IN_FLIGHT
    assert failures(proxy, "state_unavailable") == 3
    assert failures(proxy, "no_provider") == 0

    private_redis.start()
    back = time.monotonic()
    until(lambda: httpx.get(f"{proxy.url}/readyz").status_code == 200, timeout_s=10)
    spent = ledger_spend(proxy).quantize(Decimal("0.000001"))  # as the refusal shows it
    # Within ten seconds of Redis' return the counter equals the ledger's spend: the eight
    # settles landed, and nothing is left reserved (no request is in flight now).
    while (counted := counted_spend(client)) != spent:
        assert time.monotonic() - back < 10, f"the budget counts ${counted}, the ledger ${spent}"
        time.sleep(0.2)
    # A hold left over would show: the eight estimates alone come to more than the whole spend.
    assert Decimal(0) < spent < IN_FLIGHT * Decimal("0.0045")


def test_requests_a_budget_refuses_take_nothing_from_the_rate_limit(simulator, start_proxy):
    prefix = f"tollgate-e2e-{uuid.uuid4().hex[:10]}"
    frugal = key(
        "frugal", FRUGAL_KEY, "thrift", budgets={"daily_usd": Decimal("0.05")}, rate_limits={"requests_per_minute": 3}
    )
    config = routed(simulator.url).changed(state={"url": "redis://127.0.0.1:6379/0", "prefix": prefix}, keys=[frugal])
    client = start_proxy(config).client(api_key=FRUGAL_KEY)
    try:
        for _ in range(5):  # a high-quality image is estimated well above the whole budget
            with pytest.raises(openai.RateLimitError) as refused:
                client.images.generate(model="gpt-image-2", prompt="a mural", quality="high", size="1024x1024")
            assert refused.value.code == "budget_exceeded"
        for _ in range(3):  # the minute's three requests are all still there
            reply = client.chat.completions.create(model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}])
            assert reply.choices[0].message.content
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}])
        assert refused.value.code == "rate_limit_exceeded"
    finally:
        with redis.Redis.from_url("redis://127.0.0.1:6379/0") as shared:
            keys = list(shared.scan_iter(f"{prefix}:*"))
            if keys:
                shared.delete(*keys)
