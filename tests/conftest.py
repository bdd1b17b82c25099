"""Fixtures shared by the unit tests. `store`: each state store, in memory and on
the real Redis at 127.0.0.1:6379 (under a prefix of the test's own, removed after)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from proxy.state import MemoryCounters, StateStore
from proxy.state.redis import RedisCounters

REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["memory", "redis"])
async def store(request) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        yield MemoryCounters()
        return
    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    counters = RedisCounters(REDIS, prefix=prefix)
    yield counters
    await counters.aclose()
    async with redis.asyncio.Redis.from_url(REDIS) as client:
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
