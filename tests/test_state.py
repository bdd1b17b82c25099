"""Both state stores keep the same promises: reservations within limits, all or
nothing across the counters named, settled exactly once and lapsing when nobody
settles them; token buckets that refill at their rate and take back what a
refused request took; atomicity under concurrency (the Redis store across
connections); and, for Redis, settles that wait out an outage and then land."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from policies.counters import Allowance, Bucket, OverLimit, Reservation, StateUnavailable
from providers.errors import FailureReason
from proxy.state import MemoryCounters
from proxy.state.redis import RedisCounters

from .conftest import REDIS
from .e2e.tcp_relay import TcpRelay

DAY = Allowance("budget:key:a:day:2026-11-30", limit=1_000, ttl_s=3600)
TEAM = Allowance("budget:team:t:day:2026-11-30", limit=500, ttl_s=3600)


def hold(amount: int, *, expires_s: float = 60) -> Reservation:
    return Reservation(f"req_{uuid.uuid4().hex[:12]}", amount, expires_s)


async def test_a_reservation_fits_within_every_allowance_or_takes_from_none(store):
    assert await store.reserve((DAY, TEAM), hold(300)) is None
    # 600 would pass the key's 1000, not the team's 500; the refusal says what the team had used.
    assert await store.reserve((DAY, TEAM), hold(300)) == OverLimit(TEAM, 300)
    assert (await store.used(DAY), await store.used(TEAM)) == (300, 300)
    assert await store.reserve((DAY,), hold(700)) is None
    assert await store.used(DAY) == 1_000


async def test_settling_moves_a_reservation_to_the_actual_cost_even_past_the_limit(store):
    reservation = hold(400)
    await store.reserve((TEAM,), reservation)
    await store.settle((TEAM,), reservation.id, 650)  # the request cost more than its estimate
    assert await store.used(TEAM) == 650
    assert await store.reserve((TEAM,), hold(0)) == OverLimit(TEAM, 650)  # an overspent budget admits nothing


async def test_a_reservation_is_settled_exactly_once(store):
    reservation = hold(400)
    await store.reserve((DAY, TEAM), reservation)
    await store.settle((DAY, TEAM), reservation.id, 120)
    await store.settle((DAY, TEAM), reservation.id, 120)  # a settle whose answer was lost, sent again
    assert (await store.used(DAY), await store.used(TEAM)) == (120, 120)
    await store.settle((DAY, TEAM), "req_never_reserved", 999)  # nothing held, nothing to charge
    assert (await store.used(DAY), await store.used(TEAM)) == (120, 120)


async def test_reserving_the_same_id_again_holds_it_once(store):
    reservation = hold(200)
    assert await store.reserve((TEAM,), reservation) is None
    assert await store.reserve((TEAM,), reservation) is None
    assert await store.used(TEAM) == 200
    await store.settle((TEAM,), reservation.id, 0)  # released: the request never ran
    assert await store.used(TEAM) == 0


async def test_large_amounts_stay_exact(store):
    """Nano-dollars of a large monthly budget pass 2^53 / 1000: no float rounding on the way."""
    month = Allowance("budget:team:big:month:2026-11", limit=9_007_199_254_740_000, ttl_s=3600)
    reservation = hold(1_234_567_890_123_457)
    assert await store.reserve((month,), reservation) is None
    await store.settle((month,), reservation.id, 1_234_567_890_123_451)
    await store.adjust((month,), 7)
    assert await store.used(month) == 1_234_567_890_123_458


def test_memory_reservations_lapse_and_a_late_settle_still_charges_once():
    now = [0.0]
    memory = MemoryCounters(clock=lambda: now[0])
    stuck, late = hold(300, expires_s=120), hold(200, expires_s=120)

    async def go():
        await memory.reserve((TEAM,), stuck)  # its process dies: nobody settles it
        await memory.reserve((TEAM,), late)  # its settle comes after it lapsed
        now[0] += 60
        assert await memory.used(TEAM) == 500
        now[0] += 61
        assert await memory.used(TEAM) == 0
        await memory.settle((TEAM,), late.id, 150)
        await memory.settle((TEAM,), late.id, 150)
        assert await memory.used(TEAM) == 150

    asyncio.run(go())


async def test_redis_reservations_lapse_on_redis_clock_and_a_late_settle_still_charges_once():
    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    store = RedisCounters(REDIS, prefix=prefix)
    stuck, late = hold(300, expires_s=0.3), hold(200, expires_s=0.3)
    try:
        await store.reserve((TEAM,), stuck)
        await store.reserve((TEAM,), late)
        assert await store.used(TEAM) == 500
        await asyncio.sleep(0.5)
        assert await store.used(TEAM) == 0
        await store.settle((TEAM,), late.id, 150)
        await store.settle((TEAM,), late.id, 150)
        assert await store.used(TEAM) == 150
    finally:
        await store.aclose()
        await _forget(prefix)


async def test_redis_counts_what_replicas_of_the_previous_version_wrote():
    """Before reservations had ids an allowance was one integer under its key; it keeps
    that meaning, so a rolling upgrade neither hands a budget back nor trips on a type."""
    import redis.asyncio

    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    store = RedisCounters(REDIS, prefix=prefix)
    try:
        async with redis.asyncio.Redis.from_url(REDIS) as client:
            await client.incrby(f"{prefix}:{TEAM.key}", 400)  # what an older replica spent and reserved
        assert await store.reserve((TEAM,), hold(200)) == OverLimit(TEAM, 400)
        reservation = hold(100)
        assert await store.reserve((TEAM,), reservation) is None
        await store.settle((TEAM,), reservation.id, 30)
        async with redis.asyncio.Redis.from_url(REDIS) as client:
            assert int(await client.get(f"{prefix}:{TEAM.key}")) == 430
    finally:
        await store.aclose()
        await _forget(prefix)


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


async def test_what_a_refused_request_took_is_given_back_up_to_capacity(store):
    requests = Bucket("rate:key:b:requests", capacity=2, cost=1)
    images = Bucket("rate:key:b:images", capacity=4, cost=3)
    assert await store.take((requests, images)) is None
    await store.give_back((requests, images))  # a later policy refused it
    assert await store.take((requests, images)) is None  # the tokens are there again
    await store.give_back((requests, images))
    await store.give_back((requests, images))  # more than was taken: each bucket stops at its capacity
    assert await store.take((requests,)) is None
    assert await store.take((requests,)) is None
    assert await store.take((requests,)) is not None


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
        reservation = hold(900)
        await memory.reserve((DAY,), reservation)
        await memory.settle((DAY,), reservation.id, 900)
        now[0] += DAY.ttl_s + 1
        assert await memory.used(DAY) == 0

    asyncio.run(go())


async def test_redis_reservations_are_atomic_across_connections():
    """Ten clients (as ten replicas would) race for a budget of five requests' worth."""
    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    clients = [RedisCounters(REDIS, prefix=prefix) for _ in range(10)]
    budget = Allowance("budget:team:race:day:x", limit=500, ttl_s=60)
    try:
        results = await asyncio.gather(*(client.reserve((budget,), hold(100)) for client in clients for _ in range(3)))
        assert sum(result is None for result in results) == 5
        assert await clients[0].used(budget) == 500
    finally:
        for client in clients:
            await client.aclose()
        await _forget(prefix)


async def test_an_unreachable_redis_refuses_with_a_clear_503():
    unreachable = RedisCounters("redis://127.0.0.1:1/0", prefix="x")
    for check in (unreachable.reserve((DAY,), hold(1)), unreachable.take((Bucket("rate:k", 1, 1),))):
        with pytest.raises(StateUnavailable) as refused:
            await check
        error = refused.value
        assert (error.status, error.code, error.reason) == (503, "state_unavailable", FailureReason.STATE_UNAVAILABLE)
        assert "cannot reach its state store" in error.message and error.headers["retry-after"] == "1"
    with pytest.raises(StateUnavailable):
        await unreachable.ping()
    await unreachable.aclose()


async def test_a_settle_redis_cannot_take_waits_and_lands_once_it_is_back():
    """The store drops away after the reservation: the settle returns at once, waits in
    the process, and lands (once) when Redis answers again."""
    relay = TcpRelay(6379)
    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    counters = RedisCounters(f"redis://127.0.0.1:{relay.port}/0", prefix=prefix)
    settled, refunded = hold(400), hold(300)
    bucket = Bucket("rate:key:blip:requests", capacity=1, cost=1)
    try:
        await counters.reserve((DAY, TEAM), settled)
        await counters.reserve((DAY,), refunded)
        assert await counters.take((bucket,)) is None
        relay.cut()
        started = time.monotonic()
        await counters.settle((DAY, TEAM), settled.id, 120)
        await counters.settle((DAY,), refunded.id, 0)  # a refused request's release
        await counters.give_back((bucket,))
        assert time.monotonic() - started < 1  # the request's end is not held up
        assert len(counters.pending) == 3
        with pytest.raises(StateUnavailable):
            await counters.reserve((DAY,), hold(1))
        await asyncio.sleep(1.5)  # retried, with backoff, while Redis is away
        assert len(counters.pending) == 3
        relay.restore()
        deadline = time.monotonic() + 5
        while counters.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(counters.pending) == 0
        assert (await counters.used(DAY), await counters.used(TEAM)) == (120, 120)
        assert await counters.take((bucket,)) is None  # the token came back
    finally:
        await counters.aclose()
        relay.close()
        await _forget(prefix)


async def _forget(prefix: str) -> None:
    import redis.asyncio

    async with redis.asyncio.Redis.from_url(REDIS) as client:
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
