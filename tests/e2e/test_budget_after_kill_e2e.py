"""Budgets kept in memory survive a `kill -9`: the proxy is killed right after its
answers, while their rows are still only in its journal, and the restarted proxy's
budgets count that spend (its seed waits for the dead journal's replay)."""

from __future__ import annotations

import os
import signal
import sqlite3
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

from .configs import JSON_LOGS, ConfigFile, key, openai_on, route, target
from .harness import CLIENT_KEY, Proxy, ledger_rows, marker


def config(simulator_url: str, daily_usd: Decimal) -> ConfigFile:
    return ConfigFile(
        server={"log": JSON_LOGS},
        providers={"openai": openai_on(simulator_url)},
        routes={"gpt-image-2": route(target("openai", "gpt-image-2"), retries=0)},
        keys=[key("web-app", CLIENT_KEY, "growth", budgets={"daily_usd": daily_usd})],
    )


def generate(proxy: Proxy) -> httpx.Headers:
    raw = proxy.client().images.with_raw_response.generate(
        model="gpt-image-2", prompt=f"a kite {marker()}", quality="low", size="1024x1024"
    )
    return raw.headers


def estimate(proxy: Proxy) -> Decimal:
    """What the budget reserves for one more such request."""
    answer = httpx.post(
        f"{proxy.url}/v1/images/generations",
        headers={"authorization": f"Bearer {CLIENT_KEY}", "x-tollgate-estimate-only": "true"},
        json={"model": "gpt-image-2", "prompt": "a kite [sim id=0123456789ab]", "quality": "low", "size": "1024x1024"},
    )
    return Decimal(answer.json()["estimates"][0]["with_retries_usd"])


def kill_9(proxy: Proxy) -> None:
    """SIGKILL the proxy and its children (its ledger writer among them), as an OOM kill would."""
    pid = proxy.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for child in children:
        os.kill(int(child), signal.SIGKILL)
    proxy.process.send_signal(signal.SIGKILL)
    proxy.process.wait(10)


def test_a_budget_counts_what_was_spent_before_a_kill_9(simulator, start_proxy):
    first = start_proxy(config(simulator.url, Decimal(100)))
    database = first.config_path.parent / "ledger.db"
    assert database.exists()  # registered at start-up: the tables are there
    # The database is busy: the writer cannot commit, so the answers' rows stay in the journal.
    blocker = sqlite3.connect(database, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    before = [generate(first) for _ in range(3)]
    spent = [Decimal(headers["x-tollgate-cost-usd"]) for headers in before]
    one_more = estimate(first)
    kill_9(first)
    blocker.execute("ROLLBACK")
    blocker.close()
    assert ledger_rows(first) == 0  # only the dead proxy's journal knows of the spend
    assert sum(spent) > 0 and one_more > 0

    # Room for one more request after the three, and not for two.
    daily = sum(spent) + one_more * Decimal("1.5")
    restarted = start_proxy(config(simulator.url, daily), folder=first.config_path.parent)
    spent.append(Decimal(generate(restarted)["x-tollgate-cost-usd"]))
    with pytest.raises(openai.RateLimitError) as refused:
        generate(restarted)
    error = refused.value.response.json()["error"]
    assert error["code"] == "budget_exceeded"
    used = sum(spent).quantize(Decimal("0.000001")).normalize()
    assert f"spent and in flight: ${used:f})" in error["message"]
    replayed = ", ".join(f"'{headers['x-request-id']}'" for headers in before)
    assert ledger_rows(restarted, f"request_id IN ({replayed}) AND status = 'ok'") == 3
