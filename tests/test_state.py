"""Both state stores keep the same promises: reservations within limits, all or
nothing across the counters named, token buckets that refill at their rate, and
atomicity under concurrency (the Redis store across connections)."""

from __future__ import annotations

import asyncio

import pytest

from policies.counters import Allowance, Bucket
from proxy.state import MemoryCounters
from proxy.state.redis import RedisCounters

from .conftest import REDIS

DAY = Allowance("budget:key:a:day:2026-11-30", limit=1_000, ttl_s=3600)
TEAM = Allowance("budget:team:t:day:2026-11-30", limit=500, ttl_s=3600)


async def test_a_reservation_fits_within_every_allowance_or_takes_from_none(store):
    assert await store.reserve((DAY, TEAM), 300) is None
    assert await store.reserve((DAY, TEAM), 300) == TEAM  # 600 would pass the key's 1000, not the team's 500
    assert (await store.used(DAY), await store.used(TEAM)) == (300, 300)
    assert await store.reserve((DAY,), 700) is None
    assert await store.used(DAY) == 1_000


async def test_settling_moves_a_reservation_to_the_actual_cost_even_past_the_limit(store):
    await store.reserve((TEAM,), 400)
    await store.adjust((TEAM,), 250)  # the request cost 650, more than its estimate
    assert await store.used(TEAM) == 650
    assert await store.reserve((TEAM,), 0) == TEAM  # an overspent budget admits nothing, not even a free request
    await store.adjust((TEAM,), -650)
    assert await store.used(TEAM) == 0


async def test_a_bucket_holds_a_minutes_allowance_and_says_how_long_to_wait(store):
    requests = Bucket("rate:key:a:requests", capacity=3, cost=1)
    for _ in range(3):
        assert await store.take((requests,)) is None
    short = await store.take((requests,))
    assert short is not None and short.bucket == requests
    assert 0 < short.wait_s <= 20.1  # one token at 3 per minute


async def test_buckets_are_taken_all_or_nothing(store):
    requests = Bucket("rate:team:t:requests", capacity=10, cost=1)
    images = Bucket("rate:team:t:images", capacity=4, cost=3)
    assert await store.take((requests, images)) is None
    short = await store.take((requests, images))
    assert short is not None and short.bucket == images
    # The refused request took nothing: nine requests remain for text work.
    for _ in range(9):
        assert await store.take((requests,)) is None


def test_memory_buckets_refill_at_their_rate():
    now = [1000.0]
    memory = MemoryCounters(clock=lambda: now[0])
    bucket = Bucket("rate:key:a:requests", capacity=60, cost=30)

    async def go():
        assert await memory.take((bucket,)) is None
        assert await memory.take((bucket,)) is None
        assert (await memory.take((bucket,))).wait_s == pytest.approx(30)
        now[0] += 30  # a token a second
        assert await memory.take((bucket,)) is None

    asyncio.run(go())


def test_memory_allowances_are_forgotten_after_their_period():
    now = [0.0]
    memory = MemoryCounters(clock=lambda: now[0])

    async def go():
        await memory.reserve((DAY,), 900)
        now[0] += DAY.ttl_s + 1
        assert await memory.used(DAY) == 0

    asyncio.run(go())


async def test_redis_reservations_are_atomic_across_connections():
    """Ten clients (as ten replicas would) race for a budget of five requests' worth."""
    import uuid

    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    clients = [RedisCounters(REDIS, prefix=prefix) for _ in range(10)]
    budget = Allowance("budget:team:race:day:x", limit=500, ttl_s=60)
    try:
        results = await asyncio.gather(*(client.reserve((budget,), 100) for client in clients for _ in range(3)))
        assert sum(result is None for result in results) == 5
        assert await clients[0].used(budget) == 500
    finally:
        await clients[0].adjust((budget,), -500)
        for client in clients:
            await client.aclose()


async def test_an_unreachable_redis_refuses_with_a_clear_503():
    from providers.errors import PolicyRefused

    unreachable = RedisCounters("redis://127.0.0.1:1/0", prefix="x")
    with pytest.raises(PolicyRefused) as refused:
        await unreachable.reserve((DAY,), 1)
    assert refused.value.status == 503 and "state store (Redis)" in refused.value.message
    assert refused.value.headers["retry-after"] == "1"
    await unreachable.aclose()
