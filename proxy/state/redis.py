"""Counters in Redis, shared by every replica. Each operation is one Lua script,
so it is atomic across all the counters it names, and the clock is Redis' own,
so replicas with drifting clocks still agree on a rate."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from policies.counters import Allowance, Bucket, Shortfall
from providers.errors import FailureReason, PolicyRefused

# KEYS: the allowances; ARGV: amount, then each allowance's limit, then each ttl.
# Returns 0 when reserved, else the 1-based index of the first allowance that would go over.
_RESERVE = """
local amount = tonumber(ARGV[1])
local n = #KEYS
for i = 1, n do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  local limit = tonumber(ARGV[1 + i])
  if used >= limit or used + amount > limit then return i end
end
for i = 1, n do
  redis.call('INCRBY', KEYS[i], amount)
  redis.call('EXPIRE', KEYS[i], ARGV[1 + n + i])
end
return 0
"""

# KEYS: the allowances; ARGV: amount, then each ttl.
_ADJUST = """
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[1])
  redis.call('EXPIRE', KEYS[i], ARGV[1 + i])
end
return 0
"""

# KEYS: the buckets (hashes of tokens and when); ARGV: each bucket's capacity and cost.
# Returns {0} when taken, else {index of the bucket short longest, seconds to wait}.
_TAKE = """
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local levels = {}
local short, wait = 0, 0
for i = 1, #KEYS do
  local capacity, cost = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local tokens, at = tonumber(state[1]) or capacity, tonumber(state[2]) or now
  local level = math.min(capacity, tokens + math.max(now - at, 0) * capacity / 60)
  levels[i] = level
  if level < cost and (cost - level) * 60 / capacity > wait then
    short, wait = i, (cost - level) * 60 / capacity
  end
end
if short > 0 then return {short, tostring(wait)} end
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], 'tokens', tostring(levels[i] - tonumber(ARGV[2 * i])), 'at', tostring(now))
  redis.call('EXPIRE', KEYS[i], 120)
end
return {0}
"""


class RedisCounters:
    shared = True

    def __init__(self, url: str, *, prefix: str) -> None:
        # One pooled client for the process; connections are opened on first use.
        self._redis = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = prefix
        self._reserve = self._redis.register_script(_RESERVE)
        self._adjust = self._redis.register_script(_ADJUST)
        self._take = self._redis.register_script(_TAKE)

    async def reserve(self, allowances: tuple[Allowance, ...], amount: int) -> Allowance | None:
        args = [amount, *(a.limit for a in allowances), *(a.ttl_s for a in allowances)]
        over = await self._run(self._reserve, self._keys(a.key for a in allowances), args)
        return allowances[int(over) - 1] if int(over) else None

    async def adjust(self, allowances: tuple[Allowance, ...], amount: int) -> None:
        await self._run(self._adjust, self._keys(a.key for a in allowances), [amount, *(a.ttl_s for a in allowances)])

    async def used(self, allowance: Allowance) -> int:
        try:
            value = await self._redis.get(self._key(allowance.key))
        except RedisError as error:
            raise _unavailable(error) from None
        return int(value or 0)

    async def take(self, buckets: tuple[Bucket, ...]) -> Shortfall | None:
        args = [value for bucket in buckets for value in (bucket.capacity, bucket.cost)]
        result = await self._run(self._take, self._keys(b.key for b in buckets), args)
        if int(result[0]) == 0:
            return None
        return Shortfall(buckets[int(result[0]) - 1], float(result[1]))

    async def aclose(self) -> None:
        await self._redis.aclose()

    def _key(self, key: str) -> str:
        return f"{self._prefix}:{key}"

    def _keys(self, keys: Any) -> list[str]:
        return [self._key(key) for key in keys]

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except RedisError as error:
            raise _unavailable(error) from None


def _unavailable(error: RedisError) -> PolicyRefused:
    """Budgets and rate limits cannot be checked: refuse rather than spend blind."""
    return PolicyRefused(
        "state",
        "Tollgate cannot reach its state store (Redis), which holds the budgets and rate limits, so it cannot "
        f"admit this request ({type(error).__name__}). Retry shortly; operators: check `state.url`.",
        status=503,
        reason=FailureReason.NO_PROVIDER,
        code="state_unavailable",
        retry_after_s=1,
    )
