"""Many replicas, one truth (issue 15, item 3): three `tollgate serve` behind nginx
(deploy/nginx.conf, round robin), one PostgreSQL ledger, one Redis, the simulator
upstream. 300 chat completions from 16 clients of the official SDK; once half are
over, one replica, serving, is killed with SIGKILL and started again.

Every request a replica answered has exactly one row; the ones it never answered
are `abandoned` once it is back (or have no row: cut before they were journaled);
only requests sent around the kill go unanswered; `/admin/spend` is the sum of the
cost headers (plus the abandoned rows' estimates), exactly; a team budget shared
by the three is overspent by at most one request per replica. kill_accounts.py
says each check; the full run at 3,000 requests is bench/replicas.py."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from decimal import Decimal

import openai
import pytest
import redis

from ..databases import postgres_database
from .configs import key, routed
from .harness import eventually, free_port, requests_in_flight
from .kill_accounts import settle
from .kill_run import Plan, one_request, run
from .load_balancer import LoadBalancer
from .replicas import Replicas

ADMIN_KEY = "adm-replicas-e2e"
STEADY_KEY = "sk-steady-replicas"
CAPPED_KEY = "sk-capped-replicas"
REDIS = "redis://127.0.0.1:6379/0"
MODEL = "gpt-5.4-mini"
# The simulator takes its time over each answer, as a provider does, so the kill finds
# requests in flight (on a busy machine the clients keep fewer of them there than 16).
CONTENT = "hello [sim delay=1]"


def config(simulator_url: str, prefix: str, capped_daily: Decimal) -> str:
    """Every request passes budgets and rate limits, counted in Redis; only the capped team's runs out."""
    limits = {"rate_limits": {"requests_per_minute": 100_000}}
    return (
        routed(simulator_url)
        .with_server(admin_key=ADMIN_KEY)
        .changed(
            state={"url": REDIS, "prefix": prefix},
            keys=[key("steady-app", STEADY_KEY, "steady", **limits), key("capped-app", CAPPED_KEY, "capped", **limits)],
            teams={
                "steady": {"budgets": {"daily_usd": Decimal(1000)}},
                "capped": {"budgets": {"daily_usd": capped_daily}},
            },
        )
        .yaml()
    )


@pytest.fixture
def ledger_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture
def prefix() -> Iterator[str]:
    prefix = f"tollgate-e2e-{uuid.uuid4().hex[:10]}"
    yield prefix
    with redis.Redis.from_url(REDIS) as client:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)


@pytest.mark.timeout(300)
def test_three_replicas_behind_nginx_keep_one_truth_through_a_kill_9(simulator, tmp_path, ledger_url, prefix):
    requests, concurrency, replicas_count = 300, 16, 3
    plan = Plan(
        "",  # the balancer's, once it runs
        requests,
        concurrency,
        keys=[STEADY_KEY] * 4 + [CAPPED_KEY],
        model=MODEL,
        run=f"replicas-{uuid.uuid4().hex[:8]}",
        content=CONTENT,
        max_completion_tokens=16,
    )
    # The capped team's budget has room for about 20 of its 60 requests: measured on a replica
    # of its own (its own SQLite ledger), with the steady team's key.
    probe = Replicas(config(simulator.url, prefix, Decimal(1000)), tmp_path / "probe", 1, {})
    probe.start()
    try:
        cost, reserved = one_request(probe.live[0].url, STEADY_KEY, plan)
    finally:
        probe.stop()
    capped_daily = reserved + 20 * cost

    replicas = Replicas(
        config(simulator.url, prefix, capped_daily), tmp_path, replicas_count, {"TOLLGATE_LEDGER_URL": ledger_url}
    )
    balancer = LoadBalancer(tmp_path / "nginx", replicas.ports, free_port())
    try:
        replicas.start()
        balancer.start()
        plan = replace(plan, url=balancer.url)
        outcomes, timeline = run(plan, replicas)
        accounts = settle(
            plan,
            outcomes,
            timeline,
            ledger_url=ledger_url,
            admin_key=ADMIN_KEY,
            capped=("capped", capped_daily, replicas_count),
        )
        assert not accounts.problems, "\n".join(accounts.problems[:20])
        assert accounts.answered["200"] + accounts.answered["429 budget_exceeded"] + accounts.unanswered == requests
        assert accounts.unanswered == accounts.abandoned + accounts.unanswered_without_row + accounts.lost
        assert 1 <= accounts.abandoned <= accounts.unanswered <= concurrency
        # nginx moved the requests the dead replica refused to a live one: each tried it first.
        victim = f"127.0.0.1:{replicas.ports[plan.victim]}"
        moved = [line for line in balancer.requests() if len(line.replicas) == 2 and line.replicas[0] == victim]
        assert moved and all(line.status != 502 for line in moved)
    finally:
        balancer.stop()
        replicas.stop()


def test_a_draining_replica_refuses_new_connections_and_nginx_sends_them_to_another(
    simulator, tmp_path, ledger_url, prefix
):
    """What deploy/nginx.conf's comment promises: a replica told to stop finishes what it
    serves and stops listening, so nginx moves the next requests on to another, which is
    safe since the draining one never saw them; no client sees a 502."""
    replicas = Replicas(config(simulator.url, prefix, Decimal(1000)), tmp_path, 2, {"TOLLGATE_LEDGER_URL": ledger_url})
    balancer = LoadBalancer(tmp_path / "nginx", replicas.ports, free_port())
    try:
        replicas.start()
        balancer.start()
        draining = replicas.live[0]
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(chat, draining.url, "slow [sim delay=4]")
            assert eventually(lambda: requests_in_flight(draining) == 1)
            draining.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)  # it has stopped listening
            answers = [chat(balancer.url, "hello") for _ in range(20)]
            assert draining.process.poll() is None  # still draining the slow one meanwhile
            assert slow.result().status_code == 200
        assert [answer.status_code for answer in answers] == [200] * 20
        assert draining.process.wait(15) == 0
        victim = f"127.0.0.1:{replicas.ports[0]}"
        moved = [line for line in balancer.requests() if line.replicas[0] == victim]
        assert moved and all(line.replica_statuses == ["502", "200"] for line in moved)
        assert all(line.replicas[1] != victim for line in moved)
    finally:
        balancer.stop()
        replicas.stop()


def chat(url: str, content: str):
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=STEADY_KEY, max_retries=0)
    return client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": content}]
    )
