"""Fixtures shared by the unit tests. `store`: each state store, in memory, on the
real Redis at 127.0.0.1:6379 and on a real six-node Redis Cluster (under a prefix
of the test's own, removed after). `redis_cluster`: that cluster, started once per
test process (see tests/e2e/redis_cluster.py); tests may write to it but not kill
its nodes.

The `e2e` marker: a test that starts real servers for itself (everything in tests/e2e/,
and a test on the Redis Cluster, whose six nodes are started for the run), so that
`pytest -m "not e2e"` is the fast loop. The whole suite still runs everything."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio

from proxy.state import MemoryCounters, StateStore
from proxy.state.redis import RedisCounters

from .e2e.redis_cluster import LocalRedisCluster

REDIS = "redis://127.0.0.1:6379/0"
E2E = Path(__file__).parent / "e2e"
# A store's or map's parameter that runs it on the Redis Cluster.
ON_CLUSTER = pytest.param("cluster", marks=pytest.mark.e2e)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(E2E) or "redis_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory) -> Iterator[LocalRedisCluster]:
    cluster = LocalRedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["memory", "redis", ON_CLUSTER])
async def store(request) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        yield MemoryCounters()
        return
    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    if request.param == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        counters = RedisCounters(cluster.url, prefix=prefix, cluster=True)
        yield counters
        await counters.aclose()
        forget_cluster_keys(cluster.url, prefix)
        return
    counters = RedisCounters(REDIS, prefix=prefix)
    yield counters
    await counters.aclose()
    async with redis.asyncio.Redis.from_url(REDIS) as client:
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)


def forget_cluster_keys(url: str, prefix: str) -> None:
    """Delete every key a cluster store wrote under `prefix` (each behind a `{prefix:…}` tag)."""
    with redis.RedisCluster.from_url(url) as client:
        for key in list(client.scan_iter(match=f"{{{prefix}:*", target_nodes=redis.RedisCluster.PRIMARIES)):
            client.delete(key)


async def pause_store(cluster: LocalRedisCluster | None, milliseconds: int) -> None:
    """Every node of the cluster, or the local Redis, answers nothing for a while
    (CLIENT PAUSE): what a client's commands meet when the store is slow."""
    nodes = [f"redis://127.0.0.1:{node.port}/0" for node in cluster.nodes] if cluster else [REDIS]
    for node in nodes:
        async with redis.asyncio.Redis.from_url(node) as client:
            await client.execute_command("CLIENT", "PAUSE", milliseconds, "ALL")
