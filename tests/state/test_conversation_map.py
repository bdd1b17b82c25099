"""Both conversation maps keep the same promises: an id bound to where it was made,
found again until its time to live is over, and nothing for ids never bound; the
Redis map on the real Redis at 127.0.0.1:6379 and on a real Redis Cluster, under a
prefix of the test's own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio

from proxy.config.schema import StateSettings
from proxy.errors import ConversationsUnavailable
from proxy.state import Binding, ConversationMap, MemoryConversations, open_conversations
from proxy.state.conversations import MAX_ID_LENGTH
from proxy.state.redis_conversations import RedisConversations

from ..conftest import ON_CLUSTER, REDIS, pause_store

EAST = Binding("east", "gpt-5.4", "gpt-5.4")
WEST = Binding("west", "gpt-5.4-2026-03-05", "gpt-5.4")


@pytest.fixture(params=["memory", "redis", ON_CLUSTER])
async def conversations(request) -> AsyncIterator[ConversationMap]:
    if request.param == "memory":
        yield MemoryConversations(ttl_s=3600)
        return
    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    if request.param == "cluster":
        # Each binding is one key, in whatever slot its id falls: one bind may span masters.
        url = request.getfixturevalue("redis_cluster").url
        store = open_conversations(StateSettings(url=url, cluster=True, prefix=prefix))
        yield store
        await store.aclose()
        with redis.RedisCluster.from_url(url) as client:
            for key in list(client.scan_iter(match=f"{prefix}:*")):
                client.delete(key)
        return
    store = RedisConversations(REDIS, prefix=prefix, ttl_s=3600)
    yield store
    await store.aclose()
    async with redis.asyncio.Redis.from_url(REDIS) as client:
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)


async def test_an_id_is_found_where_it_was_bound(conversations):
    await conversations.bind(["resp_1", "conv_1", *(f"resp_{n}_of_many" for n in range(20))], EAST)
    assert all([await conversations.find(f"resp_{n}_of_many") == EAST for n in range(20)])
    await conversations.bind(["resp_2"], WEST)
    assert await conversations.find("resp_1") == EAST
    assert await conversations.find("conv_1") == EAST
    assert await conversations.find("resp_2") == WEST
    assert await conversations.find("resp_never_made_here") is None


async def test_a_rebound_id_follows_its_latest_binding(conversations):
    await conversations.bind(["conv_1"], EAST)
    await conversations.bind(["conv_1"], WEST)
    assert await conversations.find("conv_1") == WEST


async def test_ids_longer_than_openais_are_neither_bound_nor_looked_up(conversations):
    long_id = "resp_" + "x" * MAX_ID_LENGTH
    await conversations.bind([long_id, "resp_short"], EAST)
    assert await conversations.find(long_id) is None
    assert await conversations.find("resp_short") == EAST


async def test_memory_bindings_expire_and_are_bounded():
    now = [0.0]
    memory = MemoryConversations(ttl_s=100, limit=3, clock=lambda: now[0])
    await memory.bind(["a"], EAST)
    now[0] = 99.0
    assert await memory.find("a") == EAST
    now[0] = 100.0
    assert await memory.find("a") is None
    await memory.bind(["b", "c", "d", "e"], WEST)  # "a" purged as expired, "b" as the oldest past the limit
    assert [await memory.find(name) for name in "abcde"] == [None, None, WEST, WEST, WEST]
    assert len(memory._bindings) == 3


async def test_redis_bindings_carry_the_configured_expiry():
    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    settings = StateSettings(url=REDIS, prefix=prefix, conversation_ttl_days=2)
    store = open_conversations(settings)
    try:
        await store.bind(["resp_ttl"], EAST)
        async with redis.asyncio.Redis.from_url(REDIS) as client:
            ttl = await client.ttl(f"{prefix}:conversation:resp_ttl")
            await client.delete(f"{prefix}:conversation:resp_ttl")
        assert 2 * 86_400 - 5 <= ttl <= 2 * 86_400
    finally:
        await store.aclose()


async def test_a_redis_binding_is_gone_once_it_expires():
    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    store = RedisConversations(REDIS, prefix=prefix, ttl_s=1)
    try:
        await store.bind(["resp_brief"], EAST)
        assert await store.find("resp_brief") == EAST
        await asyncio.sleep(1.2)
        assert await store.find("resp_brief") is None
    finally:
        await store.aclose()


async def test_an_unreachable_redis_is_a_503_not_a_guess():
    store = RedisConversations("redis://127.0.0.1:1/0", prefix="tollgate-test", ttl_s=60)
    try:
        with pytest.raises(ConversationsUnavailable) as found:
            await store.find("resp_1")
        assert found.value.status == 503 and found.value.code == "state_unavailable"
        assert "state.url" in found.value.message
        with pytest.raises(ConversationsUnavailable):
            await store.bind(["resp_1"], EAST)
    finally:
        await store.aclose()


@pytest.mark.parametrize("kind", ["redis", ON_CLUSTER])
async def test_a_burst_on_one_id_while_the_store_is_slow_waits_for_connections(kind, request):
    """300 look-ups of one id while the store answers nothing for 0.4 s (CLIENT PAUSE):
    every connection the client may open is busy at once, the rest must wait for one.
    On a cluster the id's key is on one node, where redis-py's own limit (100
    connections) would refuse the 101st command at once."""
    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    cluster = request.getfixturevalue("redis_cluster") if kind == "cluster" else None
    url = cluster.url if cluster else REDIS
    store = open_conversations(StateSettings(url=url, cluster=cluster is not None, prefix=prefix))
    try:
        await store.bind(["resp_busy"], EAST)  # connected, the slot map loaded
        await pause_store(cluster, 400)
        found = await asyncio.gather(*(store.find("resp_busy") for _ in range(300)), return_exceptions=True)
        assert found == [EAST] * 300
    finally:
        await store.aclose()
        if cluster:
            with redis.RedisCluster.from_url(url) as client:
                for key in list(client.scan_iter(match=f"{prefix}:*")):
                    client.delete(key)
        else:
            async with redis.asyncio.Redis.from_url(REDIS) as client:
                await client.delete(f"{prefix}:conversation:resp_busy")
