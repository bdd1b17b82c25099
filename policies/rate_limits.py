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

from .base import Caller, Hold, Policy, PolicyRefused, Preflight
from .config import Built, PolicyConfig, RateLimitSettings
from .counters import Bucket, Counters

_MADE_AT_MOST = 4096


@dataclass(frozen=True, slots=True)
class RateLimit:
    requests_per_minute: int | None = None
    images_per_minute: int | None = None


class RateLimits(Policy):
    name = "rate_limits"

    def __init__(self, counters: Counters, *, keys: Mapping[str, RateLimit], teams: Mapping[str, RateLimit]) -> None:
        self._counters = counters
        self._limits = {"key": dict(keys), "team": dict(teams)}
        # Callers are the config's keys, and requests ask for a few images each: few entries.
        self._made: dict[tuple[str | None, str | None, int], dict[Bucket, tuple[str, str, str]]] = {}

    @classmethod
    def from_config(cls, config: PolicyConfig, built: Built) -> RateLimits | None:
        if not config.policies.rate_limits.enabled:
            return None
        keys = {key.id: _limit(key.rate_limits) for key in config.keys or () if key.rate_limits}
        teams = {name: _limit(team.rate_limits) for name, team in config.teams.items() if team.rate_limits}
        return cls(built.counters, keys=keys, teams=teams) if keys or teams else None

    async def admit(self, preflight: Preflight) -> Hold | None:
        images = preflight.call.image.n if preflight.call.image is not None else 0
        owners = self._buckets_of(preflight.caller, images)
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

    def _buckets_of(self, caller: Caller, images: int) -> dict[Bucket, tuple[str, str, str]]:
        """The buckets a request of `caller` for `images` images takes from, each with its
        scope, name and unit; made once per caller and image count (the limits are the
        config's, fixed for this chain's life)."""
        made_for = (caller.key_id, caller.team, images)
        if (made := self._made.get(made_for)) is not None:
            return made
        owners: dict[Bucket, tuple[str, str, str]] = {}
        for scope, name in caller.owners():
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
                bucket = Bucket(f"rate:{scope}:{name}:{unit}", per_minute, cost, caller.counter_group)
                owners[bucket] = (scope, name, unit)
        if len(self._made) >= _MADE_AT_MOST:  # e.g. image counts without the image_parameters policy's bound
            self._made.clear()
        self._made[made_for] = owners
        return owners

    def _refuse_never(self, scope: str, name: str, images: int, limit: int) -> None:
        raise PolicyRefused(
            self.name,
            f"This request asks for {images} images, more than the {scope} '{name}' may make in a minute "
            f"({limit}), so it could never be admitted. Ask for at most {limit} (`n`).",
            reason=FailureReason.RATE_LIMITED,
            code="rate_limit_exceeded",
            param="n",
        )


def _limit(settings: RateLimitSettings) -> RateLimit:
    return RateLimit(settings.requests_per_minute, settings.images_per_minute)
