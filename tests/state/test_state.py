"""Every state store keeps the same promises: reservations within limits, all or
nothing across the counters named, settled exactly once and lapsing when nobody
settles them; counters that start where they are told, once, never reset by a
later start; token buckets that refill at their rate and take back what a
refused request took; atomicity under concurrency (the Redis store across
connections); and, for Redis, settles that wait out an outage and then land.
The Redis Cluster store keeps each group's counters in one hash slot."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace

import pytest
import redis
from redis.crc import key_slot

from policies.counters import Allowance, Bucket, OverLimit, Reservation, StateUnavailable, Unstarted
from providers.errors import FailureReason
from proxy.state import MemoryCounters
from proxy.state.redis import RedisCounters

from ..conftest import REDIS, forget_cluster_keys, pause_store
from ..e2e.tcp_relay import TcpRelay

# A key of team t and the team: one check changes both, so they share the team's group.
DAY = Allowance("budget:key:a:day:2026-11-30", limit=1_000, ttl_s=3600, group="team:t")
TEAM = Allowance("budget:team:t:day:2026-11-30", limit=500, ttl_s=3600, group="team:t")


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
    month = Allowance("budget:team:big:month:2026-11", limit=9_007_199_254_740_000, ttl_s=3600, starts_at=7)
    reservation = hold(1_234_567_890_123_457)
    assert await store.reserve((month,), reservation) is None
    await store.settle((month,), reservation.id, 1_234_567_890_123_451)
    assert await store.used(month) == 1_234_567_890_123_458


async def test_a_counter_the_store_lacks_is_unstarted_until_its_start_is_given(store):
    """A budget's counter starts from what its owner spent in the period (the ledger
    knows): without that figure the store holds nothing and names what it lacks."""
    day, team = replace(DAY, starts_at=None), replace(TEAM, starts_at=None)
    reservation = hold(100)
    assert await store.reserve((day, team), reservation) == Unstarted((day, team))
    assert (await store.used(day), await store.used(team)) == (0, 0)  # nothing was held
    started = (replace(day, starts_at=300), replace(team, starts_at=250))
    assert await store.reserve(started, reservation) is None
    assert (await store.used(day), await store.used(team)) == (400, 350)
    # Started: from now on the store counts them without being told where they began.
    assert await store.reserve((day, team), hold(100)) is None
    assert await store.reserve((day, team), hold(100)) == OverLimit(team, 450)


async def test_a_later_start_never_resets_a_counter_already_counting(store):
    """Two replicas find the counter missing and read the ledger; the first start wins,
    and the second (an older figure) neither resets it nor drops what it holds."""
    first, second = hold(100), hold(50)
    assert await store.reserve((replace(TEAM, starts_at=200),), first) is None
    assert await store.reserve((replace(TEAM, starts_at=20),), second) is None
    assert await store.used(TEAM) == 350
    await store.settle((TEAM,), first.id, 80)
    assert await store.used(TEAM) == 330


async def test_a_counter_refused_at_its_start_stays_started(store):
    """The first request of a period may be too dear: its counter still starts."""
    dear = replace(TEAM, starts_at=450)
    assert await store.reserve((dear,), hold(100)) == OverLimit(dear, 450)
    assert await store.reserve((replace(TEAM, starts_at=None),), hold(50)) is None
    assert await store.used(TEAM) == 500


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
    requests = Bucket("rate:team:t:requests", capacity=10, cost=1, group="team:t")
    images = Bucket("rate:team:t:images", capacity=4, cost=3, group="team:t")
    assert await store.take((requests, images)) is None
    short = await store.take((requests, images))
    assert short is not None and short.bucket == images
    # The refused request took nothing: nine requests remain for text work.
    for _ in range(9):
        assert await store.take((requests,)) is None


async def test_what_a_refused_request_took_is_given_back_up_to_capacity(store):
    requests = Bucket("rate:key:b:requests", capacity=2, cost=1, group="key:b")
    images = Bucket("rate:key:b:images", capacity=4, cost=3, group="key:b")
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


async def test_a_burst_on_a_fresh_cluster_client_is_served_whole(redis_cluster):
    """A replica's first requests come at once: every one is served, none is sent to a
    node that does not hold its slot (which made redis-py drop busy connections)."""
    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    try:
        for _ in range(5):
            store = RedisCounters(redis_cluster.url, prefix=prefix, cluster=True)
            outcomes = await asyncio.gather(
                *(store.reserve((DAY, TEAM), hold(0)) for _ in range(50)), return_exceptions=True
            )
            await store.aclose()
            assert outcomes == [None] * 50
    finally:
        forget_cluster_keys(redis_cluster.url, prefix)


async def test_an_unreachable_cluster_refuses_with_a_clear_503_quickly():
    """No seed node answers: the cluster client's own error is a 503 too, not a 500."""
    unreachable = RedisCounters("redis://127.0.0.1:1/0", prefix="x", cluster=True)
    started = time.monotonic()
    for check in (unreachable.reserve((DAY, TEAM), hold(1)), unreachable.take((Bucket("rate:k", 1, 1),))):
        with pytest.raises(StateUnavailable) as refused:
            await check
        assert (refused.value.status, refused.value.code) == (503, "state_unavailable")
    with pytest.raises(StateUnavailable):
        await unreachable.ping()
    assert time.monotonic() - started < 3
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


async def test_a_redis_that_lost_its_counters_asks_for_their_start_again():
    """A Redis restarted empty (or flushed) has no counter: the budget asks the ledger again."""
    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    store = RedisCounters(REDIS, prefix=prefix)
    team = replace(TEAM, starts_at=None)
    try:
        assert await store.reserve((replace(team, starts_at=300),), hold(100)) is None
        assert await store.reserve((team,), hold(1)) is None
        await _forget(prefix)
        assert await store.reserve((team,), hold(1)) == Unstarted((team,))
    finally:
        await store.aclose()
        await _forget(prefix)


async def test_on_a_cluster_a_key_and_its_team_count_in_one_slot(redis_cluster):
    """Every key one script names is behind its group's hash tag, under the prefix:
    the key's counters and its team's share a slot; a key without a team has its own."""
    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    store = RedisCounters(redis_cluster.url, prefix=prefix, cluster=True)
    alone = Allowance("budget:key:solo:day:2026-11-30", limit=1_000, ttl_s=3600, group="key:solo")
    try:
        assert await store.reserve((DAY, TEAM), hold(100)) is None
        assert await store.reserve((alone,), hold(100)) is None
        with redis.RedisCluster.from_url(redis_cluster.url) as client:
            names = sorted(key.decode() for key in client.scan_iter(match=f"{{{prefix}:*"))
        assert names == sorted(
            f"{{{prefix}:{group}}}:{key}{part}"
            for group, key in (("team:t", DAY.key), ("team:t", TEAM.key), ("key:solo", alone.key))
            for part in ("", ":holds", ":expiry")
        )
        slots = {
            group: {key_slot(name.encode()) for name in names if f"{{{prefix}:{group}}}" in name}
            for group in ("team:t", "key:solo")
        }
        assert len(slots["team:t"]) == 1 and len(slots["key:solo"]) == 1
        with pytest.raises(ValueError, match="one group"):
            await store.reserve((DAY, alone), hold(1))  # two slots: no one script could change both
    finally:
        await store.aclose()
        forget_cluster_keys(redis_cluster.url, prefix)


async def _forget(prefix: str) -> None:
    import redis.asyncio

    async with redis.asyncio.Redis.from_url(REDIS) as client:
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)


@pytest.mark.parametrize("kind", ["redis", "cluster"])
async def test_a_burst_while_the_store_is_slow_waits_for_connections_rather_than_failing(kind, request):
    """The same burst while the store answers nothing for 0.4 s (CLIENT PAUSE): every
    connection the client may open is busy at once, and the rest must wait for one.
    On a cluster a team's counters share one node, where redis-py's own limit (100
    connections) would refuse the 101st command at once."""
    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    cluster = request.getfixturevalue("redis_cluster") if kind == "cluster" else None
    url = cluster.url if cluster else REDIS
    store = RedisCounters(url, prefix=prefix, cluster=cluster is not None)
    try:
        assert await store.reserve((DAY, TEAM), hold(0)) is None  # connected, the slot map loaded
        await pause_store(cluster, 400)
        outcomes = await asyncio.gather(
            *(store.reserve((DAY, TEAM), hold(0)) for _ in range(300)), return_exceptions=True
        )
        assert outcomes == [None] * 300
    finally:
        await store.aclose()
        if cluster:
            forget_cluster_keys(url, prefix)
        else:
            await _forget(prefix)


@pytest.mark.parametrize("kind", ["redis", "cluster"])
async def test_a_burst_beyond_the_client_s_connections_waits_for_one_rather_than_failing(kind, request):
    """A replica at 64 concurrent requests, each with a reservation, a rate limit and a
    settle in flight, needs more connections than redis-py's pool opens (100): the
    next one waits for a connection to be free, as a slow store makes them all wait.
    It is refused (503) only when none is free within the client's timeout."""
    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    url = request.getfixturevalue("redis_cluster").url if kind == "cluster" else REDIS
    store = RedisCounters(url, prefix=prefix, cluster=kind == "cluster")
    try:
        outcomes = await asyncio.gather(
            *(store.reserve((DAY, TEAM), hold(0)) for _ in range(400)), return_exceptions=True
        )
        assert outcomes == [None] * 400
    finally:
        await store.aclose()
        if kind == "cluster":
            forget_cluster_keys(url, prefix)
        else:
            await _forget(prefix)
