"""Budgets and rate limits on a real Redis Cluster (issue 15, item 1): six of
Debian's redis-server, three masters and three replicas, formed with
`redis-cli --cluster create`; two `tollgate serve` replicas on it, with their
ledger in one PostgreSQL database; driven by the official SDK.

- An images-per-minute limit of 10 admits 10 or 11 of 30 requests spread over
  both replicas.
- A daily budget is overspent by at most one request's cost under eight
  concurrent clients; its counters sit in one slot; and when the cluster loses
  them, the next request starts the budget again from the ledger's spend.
- When a master is killed, requests whose counters live on its slots get a quick
  503 `state_unavailable` while other teams' requests pass and both replicas stay
  ready; once its replica is promoted they are admitted again, counters intact.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import httpx
import openai
import pytest
import redis

from policies.counters import to_nano

from ..conftest import forget_cluster_keys
from ..databases import postgres_database
from .configs import ConfigFile, Section, key, routed
from .harness import Proxy
from .redis_cluster import NODE_TIMEOUT_MS, LocalRedisCluster, Node, until
from .test_budget_blip_e2e import chat, counted_spend
from .test_shared_state_e2e import fire

ADMIN_KEY = "adm-redis-cluster-e2e"
PAINTER_KEY = "sk-painter-cluster"
STUDIO_KEY = "sk-studio-cluster"
NORTH_KEY = "sk-north-cluster"
SOUTH_KEY = "sk-south-cluster"
BUDGET_USD = Decimal("0.05")


@pytest.fixture(scope="module")
def ledger_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


def cluster_config(
    simulator_url: str, cluster: LocalRedisCluster, prefix: str, keys: list[Section], teams: Section | None = None
) -> ConfigFile:
    return (
        routed(simulator_url)
        .with_server(admin_key=ADMIN_KEY)
        .changed(state={"url": cluster.url, "cluster": True, "prefix": prefix}, keys=keys, teams=teams or {})
    )


def two_replicas(start_proxy, config: ConfigFile, ledger_url: str) -> tuple[Proxy, Proxy]:
    env = {"TOLLGATE_LEDGER_URL": ledger_url}
    return start_proxy(config, env=env), start_proxy(config, env=env)


def stop(replicas: tuple[Proxy, Proxy]) -> None:
    """Before the module's ledger database is dropped."""
    for proxy in replicas:
        proxy.stop()


def image(client: openai.OpenAI) -> object:
    return client.images.with_raw_response.generate(
        model="gpt-image-2", prompt="a lighthouse at dawn", quality="low", size="1024x1024"
    )


def ledger_spend(proxy: Proxy, team: str) -> Decimal:
    with httpx.Client(base_url=proxy.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as admin:
        rows = admin.get("/admin/spend", params={"group_by": "team"}).json()["rows"]
    return sum((Decimal(row["cost_usd"]) for row in rows if row["team"] == team), Decimal(0))


def test_an_images_per_minute_limit_holds_across_two_replicas(simulator, start_proxy, redis_cluster, ledger_url):
    prefix = f"tollgate-e2e-{uuid.uuid4().hex[:10]}"
    keys = [key("painter", PAINTER_KEY, rate_limits={"images_per_minute": 10})]
    replicas = two_replicas(start_proxy, cluster_config(simulator.url, redis_cluster, prefix, keys), ledger_url)
    try:
        outcomes = fire(replicas, PAINTER_KEY, 30, image)
        refused = [outcome for outcome in outcomes if isinstance(outcome, openai.APIStatusError)]
        assert {(error.status_code, error.code) for error in refused} == {(429, "rate_limit_exceeded")}
        assert 10 <= 30 - len(refused) <= 11  # a minute's allowance; an image refills every 6 s
        ports = {
            o.http_request.url.port if not isinstance(o, openai.APIStatusError) else o.request.url.port
            for o in outcomes
        }
        assert len(ports) == 2
    finally:
        stop(replicas)
        forget_cluster_keys(redis_cluster.url, prefix)


def test_a_daily_budget_holds_on_a_cluster_and_restarts_from_the_ledger(
    simulator, start_proxy, redis_cluster, ledger_url
):
    prefix = f"tollgate-e2e-{uuid.uuid4().hex[:10]}"
    keys = [key("studio-app", STUDIO_KEY, "studio")]
    teams = {"studio": {"budgets": {"daily_usd": BUDGET_USD}}}
    replicas = two_replicas(start_proxy, cluster_config(simulator.url, redis_cluster, prefix, keys, teams), ledger_url)
    try:
        outcomes = fire(replicas, STUDIO_KEY, 40, image)
        admitted = [outcome for outcome in outcomes if not isinstance(outcome, openai.APIStatusError)]
        refused = [outcome for outcome in outcomes if isinstance(outcome, openai.APIStatusError)]
        assert admitted and {error.code for error in refused} == {"budget_exceeded"}
        costs = [Decimal(raw.headers["x-tollgate-cost-usd"]) for raw in admitted]
        assert sum(costs) <= BUDGET_USD + max(costs)  # overspent by at most one request's cost
        assert sum(costs) + max(costs) > BUDGET_USD  # and used: not refused early

        # The team's counters (its budget, with holds and their expiry) are behind one hash tag, in one slot.
        tag = f"{{{prefix}:team:studio}}"
        with redis.RedisCluster.from_url(redis_cluster.url) as client:
            names = [name.decode() for name in client.scan_iter(match=f"{{{prefix}:*")]
            assert names and all(name.startswith(tag) for name in names)
            assert len({client.keyslot(name) for name in names}) == 1

        # The cluster loses the team's counters: the next request starts the day again from the ledger.
        spent = sum(costs)
        until(lambda: ledger_spend(replicas[0], "studio") == spent, timeout_s=15, what="the ledger to hold every row")
        forget_cluster_keys(redis_cluster.url, prefix)
        assert counted_spend(replicas[1].client(api_key=STUDIO_KEY)) == spent.quantize(Decimal("0.000001"))
        with pytest.raises(openai.RateLimitError):
            image(replicas[0].client(api_key=STUDIO_KEY))  # what is left does not fit a request: as before
    finally:
        stop(replicas)
        forget_cluster_keys(redis_cluster.url, prefix)


@pytest.fixture
def private_cluster(tmp_path) -> Iterator[LocalRedisCluster]:
    """A cluster of the test's own, whose master it kills."""
    cluster = LocalRedisCluster(tmp_path / "cluster")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def test_a_failed_master_refuses_its_slots_quickly_until_its_replica_takes_over(
    simulator, start_proxy, private_cluster, ledger_url
):
    prefix = f"tollgate-e2e-{uuid.uuid4().hex[:10]}"
    victim = private_cluster.master_of(f"{{{prefix}:team:north}}")
    # A second team whose counters live on another master: it keeps being served.
    south = next(
        name
        for name in (f"south-{index}" for index in range(100))
        if private_cluster.master_of(f"{{{prefix}:team:{name}}}").port != victim.port
    )
    keys = [key("north-app", NORTH_KEY, "north"), key("south-app", SOUTH_KEY, south)]
    teams = {team: {"budgets": {"daily_usd": Decimal("1.00")}} for team in ("north", south)}
    replicas = two_replicas(
        start_proxy, cluster_config(simulator.url, private_cluster, prefix, keys, teams), ledger_url
    )
    try:
        north = [proxy.client(api_key=NORTH_KEY) for proxy in replicas]
        south_clients = [proxy.client(api_key=SOUTH_KEY) for proxy in replicas]
        north_costs = [cost_of(chat(client, "hello")) for client in north]
        for client in south_clients:
            assert chat(client, "hello").status_code == 200
        counter = f"{{{prefix}:team:north}}:budget:team:north:day:{dt.datetime.now(dt.UTC).date().isoformat()}"
        before = to_nano(sum(north_costs))
        until(lambda: int(victim.command("GET", counter)) == before, timeout_s=5, what="both requests to be settled")
        private_cluster.wait_until_healthy()  # the replica holds every write

        replica = private_cluster.replica_of(victim)
        replica.command("CONFIG", "SET", "cluster-replica-no-failover", "yes")  # the test says when it takes over
        victim.kill()
        # Past the node timeout too, so the cluster has marked the master failed meanwhile.
        outage_ends = time.monotonic() + NODE_TIMEOUT_MS / 1000 + 1.5
        refusals = 0
        while time.monotonic() < outage_ends or refusals < 4:
            for client in north:
                started = time.monotonic()
                with pytest.raises(openai.InternalServerError) as refused:
                    chat(client, "hello while the master is down")
                assert (refused.value.status_code, refused.value.code) == (503, "state_unavailable")
                assert time.monotonic() - started < 3  # refused quickly, not after a long hang
                refusals += 1
            for client in south_clients:  # other masters' slots are served
                assert chat(client, "hello from the south").status_code == 200
            for proxy in replicas:  # a partial outage: still ready, only the dead slots refuse
                assert httpx.get(f"{proxy.url}/readyz").status_code == 200

        replica.command("CONFIG", "SET", "cluster-replica-no-failover", "no")  # its replica is promoted
        until(lambda: _serves(replica, counter), timeout_s=30, what="the replica to take over")
        assert int(replica.command("GET", counter)) == before  # the counter came through intact
        for client in north:
            until(lambda client=client: _admitted(client, north_costs), timeout_s=15, what="north to be admitted again")
        # Nothing was lost or counted twice: the budget counts what the ledger holds.
        spent = sum(north_costs)
        until(lambda: ledger_spend(replicas[0], "north") == spent, timeout_s=15, what="the ledger to hold every row")
        assert counted_spend(north[0]) == spent.quantize(Decimal("0.000001"))
    finally:
        stop(replicas)


def cost_of(raw) -> Decimal:
    assert raw.status_code == 200
    return Decimal(raw.headers["x-tollgate-cost-usd"])


def _serves(node: Node, key: str) -> bool:
    try:
        return node.command("ROLE")[0] == b"master" and node.command("GET", key) is not None
    except redis.RedisError:
        return False


def _admitted(client: openai.OpenAI, costs: list[Decimal]) -> bool:
    try:
        costs.append(cost_of(chat(client, "hello again")))
        return True
    except openai.InternalServerError as error:
        assert error.code == "state_unavailable"
        return False
