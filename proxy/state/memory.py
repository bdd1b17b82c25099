"""Counters in this process's memory: exact for one replica and one worker.
Every operation runs without awaiting, so on the event loop it is atomic."""

from __future__ import annotations

import time
from collections.abc import Callable

from policies.counters import Allowance, Bucket, Shortfall


class MemoryCounters:
    shared = False  # other processes do not see these counters

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._used: dict[str, tuple[int, float]] = {}  # key -> (used, expires at)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    async def reserve(self, allowances: tuple[Allowance, ...], amount: int) -> Allowance | None:
        for allowance in allowances:
            used = self._current(allowance.key)
            if used >= allowance.limit or used + amount > allowance.limit:
                return allowance
        await self.adjust(allowances, amount)
        return None

    async def adjust(self, allowances: tuple[Allowance, ...], amount: int) -> None:
        now = self._clock()
        for allowance in allowances:
            self._used[allowance.key] = (self._current(allowance.key) + amount, now + allowance.ttl_s)

    async def used(self, allowance: Allowance) -> int:
        return self._current(allowance.key)

    async def take(self, buckets: tuple[Bucket, ...]) -> Shortfall | None:
        now = self._clock()
        levels = [self._level(bucket, now) for bucket in buckets]
        shortfalls = [
            Shortfall(bucket, (bucket.cost - level) * 60 / bucket.capacity)
            for bucket, level in zip(buckets, levels, strict=True)
            if level < bucket.cost
        ]
        if shortfalls:
            return max(shortfalls, key=lambda shortfall: shortfall.wait_s)
        for bucket, level in zip(buckets, levels, strict=True):
            self._buckets[bucket.key] = (level - bucket.cost, now)
        return None

    async def aclose(self) -> None:
        pass

    def _current(self, key: str) -> int:
        used, expires = self._used.get(key, (0, 0.0))
        if expires and expires <= self._clock():
            del self._used[key]
            return 0
        return used

    def _level(self, bucket: Bucket, now: float) -> float:
        tokens, at = self._buckets.get(bucket.key, (float(bucket.capacity), now))
        return min(float(bucket.capacity), tokens + (now - at) * bucket.capacity / 60)
