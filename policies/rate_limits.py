"""Rate limits per client key and per team: requests and images per minute.

Each limit is a token bucket holding a minute's allowance and refilled
continuously, so a burst may use the whole minute at once and the pace after it
is the limit. A refusal says how long to wait, in `retry-after`. Tokens taken by
a request that a later policy refuses are given back: only requests that run count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from providers.errors import FailureReason

from .base import Hold, Policy, PolicyRefused, Preflight
from .counters import Bucket, Counters


@dataclass(frozen=True, slots=True)
class RateLimit:
    requests_per_minute: int | None = None
    images_per_minute: int | None = None


class RateLimits(Policy):
    name = "rate_limits"

    def __init__(self, counters: Counters, *, keys: Mapping[str, RateLimit], teams: Mapping[str, RateLimit]) -> None:
        self._counters = counters
        self._limits = {"key": dict(keys), "team": dict(teams)}

    async def admit(self, preflight: Preflight) -> Hold | None:
        images = preflight.call.image.n if preflight.call.image is not None else 0
        owners: dict[Bucket, tuple[str, str, str]] = {}  # bucket -> scope, name, unit
        for scope, name in preflight.caller.owners():
            limit = self._limits[scope].get(name)
            if limit is None:
                continue
            for unit, per_minute, cost in (
                ("requests", limit.requests_per_minute, 1),
                ("images", limit.images_per_minute, images),
            ):
                if per_minute is None or cost == 0:
                    continue
                if cost > per_minute:
                    self._refuse_never(scope, name, cost, per_minute)
                bucket = Bucket(f"rate:{scope}:{name}:{unit}", per_minute, cost, preflight.caller.counter_group)
                owners[bucket] = (scope, name, unit)
        if not owners:
            return None
        buckets = tuple(owners)
        short = await self._counters.take(buckets)
        if short is not None:
            scope, name, unit = owners[short.bucket]
            raise PolicyRefused(
                self.name,
                f"The {scope} '{name}' is over its rate limit of {short.bucket.capacity} {unit} per minute. "
                f"Retry after {short.wait_s:.1f} s (the `retry-after` header), or ask the operator to raise "
                f"its `rate_limits.{unit}_per_minute`.",
                status=429,
                reason=FailureReason.RATE_LIMITED,
                code="rate_limit_exceeded",
                retry_after_s=short.wait_s,
            )

        async def release() -> None:
            await self._counters.give_back(buckets)

        return Hold(release)

    def _refuse_never(self, scope: str, name: str, images: int, limit: int) -> None:
        raise PolicyRefused(
            self.name,
            f"This request asks for {images} images, more than the {scope} '{name}' may make in a minute "
            f"({limit}), so it could never be admitted. Ask for at most {limit} (`n`).",
            reason=FailureReason.RATE_LIMITED,
            code="rate_limit_exceeded",
            param="n",
        )
