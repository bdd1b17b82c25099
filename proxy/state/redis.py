"""Counters in Redis, shared by every replica. Each operation is one Lua script
(proxy/state/scripts.py), so it is atomic across all the counters it names, and
the clock is Redis' own, so replicas with drifting clocks still agree on a rate
and on when a reservation lapses.

On a Redis Cluster each key goes behind a hash tag of its prefix and its group
(`{tollgate:team:growth}:budget:key:web-app:day:2026-11-30`): every counter one
script names then lives in one slot, so each check stays one atomic script. A
team's counters and its keys' share that slot, so one master serves a team; a
key without a team has its own. On a single Redis the names are as they always
were (`tollgate:budget:key:web-app:day:2026-11-30`), so an upgrade keeps counting.

While Redis (or the master of a slot) cannot be reached, checks refuse
(`StateUnavailable`) and settles wait in this process (proxy/state/pending.py)
until it can."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from policies.counters import Allowance, Bucket, OverLimit, Reservation, Shortfall, StateUnavailable, Unstarted

from . import scripts
from .pending import PendingWrites, Report
from .redis_client import (
    STORE_ERRORS,
    StoreClient,
    Turns,
    check_serving,
    client_failure,
    connect,
    ready,
    store_failure,
)

_PING_TIMEOUT_S = 1.0


class RedisCounters:
    shared = True

    def __init__(self, url: str, *, prefix: str, cluster: bool = False, report_pending: Report | None = None) -> None:
        # One pooled client for the process (see proxy/state/redis_client.py).
        self._redis: StoreClient = connect(url, cluster=cluster)
        self._prefix = prefix
        self._cluster = cluster
        self._reserve = self._redis.register_script(scripts.RESERVE)
        self._settle = self._redis.register_script(scripts.SETTLE)
        self._used = self._redis.register_script(scripts.USED)
        self._take = self._redis.register_script(scripts.TAKE)
        self._give_back = self._redis.register_script(scripts.GIVE_BACK)
        self.pending = PendingWrites(report=report_pending)
        self._turns = Turns(cluster=cluster)

    async def reserve(
        self, allowances: tuple[Allowance, ...], reservation: Reservation
    ) -> OverLimit | Unstarted | None:
        args: list[Any] = [reservation.id, reservation.amount, reservation.expires_s]
        for allowance in allowances:
            starts_at = "" if allowance.starts_at is None else allowance.starts_at
            args += [allowance.limit, allowance.ttl_s, starts_at]
        result = await self._run(self._reserve, self._allowance_keys(allowances), args)
        first = int(result[0])
        if first == 0:
            return None
        if first == -1:
            return Unstarted(tuple(allowances[int(index) - 1] for index in result[1:]))
        return OverLimit(allowances[first - 1], int(result[1]))

    async def settle(self, allowances: tuple[Allowance, ...], reservation_id: str, actual: int) -> None:
        keys = self._allowance_keys(allowances)
        args = [reservation_id, actual, *(allowance.ttl_s for allowance in allowances)]
        await self.pending.run(lambda: self._run(self._settle, keys, args))

    async def used(self, allowance: Allowance) -> int:
        return int(await self._run(self._used, self._allowance_keys((allowance,)), []))

    async def take(self, buckets: tuple[Bucket, ...]) -> Shortfall | None:
        args = [value for bucket in buckets for value in (bucket.capacity, bucket.cost)]
        result = await self._run(self._take, self._bucket_keys(buckets), args)
        if int(result[0]) == 0:
            return None
        return Shortfall(buckets[int(result[0]) - 1], float(result[1]))

    async def give_back(self, buckets: tuple[Bucket, ...]) -> None:
        keys = self._bucket_keys(buckets)
        args = [value for bucket in buckets for value in (bucket.capacity, bucket.cost)]
        await self.pending.run(lambda: self._run(self._give_back, keys, args))

    async def ping(self) -> None:
        """Raise `StateUnavailable` unless Redis answers within a second (a cluster: some
        master answers and calls the cluster ok, see redis_client.check_serving)."""
        try:
            async with asyncio.timeout(_PING_TIMEOUT_S):
                await check_serving(self._redis)
        except (*STORE_ERRORS, TimeoutError) as error:
            raise StateUnavailable(type(error).__name__) from None

    async def aclose(self) -> None:
        await self.pending.aclose()
        await self._redis.aclose()

    def key_name(self, key: str, group: str = "") -> str:
        """Where the counter `key` of `group` lives in Redis."""
        if self._cluster:
            return f"{{{self._prefix}:{group}}}:{key}" if group else f"{{{self._prefix}:{key}}}"
        return f"{self._prefix}:{key}"

    def _bucket_keys(self, buckets: tuple[Bucket, ...]) -> list[str]:
        self._one_group(buckets)
        return [self.key_name(bucket.key, bucket.group) for bucket in buckets]

    def _allowance_keys(self, allowances: Iterable[Allowance]) -> list[str]:
        """Each allowance's counter, holds and their expiry (see proxy/state/scripts.py)."""
        allowances = tuple(allowances)
        self._one_group(allowances)
        parts = ("", ":holds", ":expiry")
        return [f"{self.key_name(allowance.key, allowance.group)}{part}" for allowance in allowances for part in parts]

    def _one_group(self, counters: tuple[Allowance, ...] | tuple[Bucket, ...]) -> None:
        # On a cluster, counters of two groups (or of none) may be in two slots: no script could change both.
        groups = {counter.group for counter in counters}
        if self._cluster and len(counters) > 1 and (len(groups) > 1 or "" in groups):
            raise ValueError(f"one operation must name counters of one group, not {counters}")

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            await ready(self._redis)
            async with self._turns:
                return await script(keys=keys, args=args)
        except STORE_ERRORS as error:  # down, restarting, failing over, loading its data, busy: not usable now
            raise StateUnavailable(store_failure(error)) from None
        except Exception as error:
            raise StateUnavailable(client_failure(error)) from None
