"""Counters in Redis, shared by every replica. Each operation is one Lua script
(proxy/state/scripts.py), so it is atomic across all the counters it names, and
the clock is Redis' own, so replicas with drifting clocks still agree on a rate
and on when a reservation lapses.

While Redis cannot be reached, checks refuse (`StateUnavailable`) and settles
wait in this process (proxy/state/pending.py) until it can."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from policies.counters import Allowance, Bucket, OverLimit, Reservation, Shortfall, StateUnavailable

from . import scripts
from .pending import PendingWrites

_PING_TIMEOUT_S = 1.0


class RedisCounters:
    shared = True

    def __init__(self, url: str, *, prefix: str) -> None:
        # One pooled client for the process; connections are opened on first use. A
        # command fails at once when Redis is down, after one retry on a fresh
        # connection (a pooled one is dead after Redis restarts).
        self._redis = Redis.from_url(
            url,
            socket_timeout=2,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        self._prefix = prefix
        self._reserve = self._redis.register_script(scripts.RESERVE)
        self._settle = self._redis.register_script(scripts.SETTLE)
        self._adjust = self._redis.register_script(scripts.ADJUST)
        self._used = self._redis.register_script(scripts.USED)
        self._take = self._redis.register_script(scripts.TAKE)
        self._give_back = self._redis.register_script(scripts.GIVE_BACK)
        self.pending = PendingWrites()

    async def reserve(self, allowances: tuple[Allowance, ...], reservation: Reservation) -> OverLimit | None:
        args = [reservation.id, reservation.amount, reservation.expires_s]
        args += [value for allowance in allowances for value in (allowance.limit, allowance.ttl_s)]
        result = await self._run(self._reserve, self._allowance_keys(allowances), args)
        if int(result[0]) == 0:
            return None
        return OverLimit(allowances[int(result[0]) - 1], int(result[1]))

    async def settle(self, allowances: tuple[Allowance, ...], reservation_id: str, actual: int) -> None:
        keys = self._allowance_keys(allowances)
        args = [reservation_id, actual, *(allowance.ttl_s for allowance in allowances)]
        await self.pending.run(lambda: self._run(self._settle, keys, args))

    async def adjust(self, allowances: tuple[Allowance, ...], amount: int) -> None:
        args = [amount, *(allowance.ttl_s for allowance in allowances)]
        await self._run(self._adjust, self._allowance_keys(allowances), args)

    async def used(self, allowance: Allowance) -> int:
        return int(await self._run(self._used, self._allowance_keys((allowance,)), []))

    async def take(self, buckets: tuple[Bucket, ...]) -> Shortfall | None:
        args = [value for bucket in buckets for value in (bucket.capacity, bucket.cost)]
        result = await self._run(self._take, self._keys(bucket.key for bucket in buckets), args)
        if int(result[0]) == 0:
            return None
        return Shortfall(buckets[int(result[0]) - 1], float(result[1]))

    async def give_back(self, buckets: tuple[Bucket, ...]) -> None:
        keys = self._keys(bucket.key for bucket in buckets)
        args = [value for bucket in buckets for value in (bucket.capacity, bucket.cost)]
        await self.pending.run(lambda: self._run(self._give_back, keys, args))

    async def ping(self) -> None:
        """Raise `StateUnavailable` unless Redis answers within a second."""
        try:
            async with asyncio.timeout(_PING_TIMEOUT_S):
                await self._redis.ping()
        except (RedisError, TimeoutError) as error:
            raise StateUnavailable(type(error).__name__) from None

    async def aclose(self) -> None:
        await self.pending.aclose()
        await self._redis.aclose()

    def _keys(self, keys: Iterable[str]) -> list[str]:
        return [f"{self._prefix}:{key}" for key in keys]

    def _allowance_keys(self, allowances: Iterable[Allowance]) -> list[str]:
        """Each allowance's counter, holds and their expiry (see proxy/state/scripts.py)."""
        parts = ("", ":holds", ":expiry")
        return [f"{self._prefix}:{allowance.key}{part}" for allowance in allowances for part in parts]

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except RedisError as error:  # down, restarting, loading its data: not usable now
            raise StateUnavailable(type(error).__name__) from None
