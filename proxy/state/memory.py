"""Counters in this process's memory: exact for one replica and one worker.
Every operation runs without awaiting, so on the event loop it is atomic; none
can fail to reach its store, so nothing waits to be retried."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from policies.counters import Allowance, Bucket, OverLimit, Reservation, Shortfall, Unstarted

_PURGE_EVERY_S = 1.0  # look for lapsed holds at most this often: a scan of the requests in flight


@dataclass(slots=True, eq=False)  # one per allowance, compared by identity (`None in tallies` is cheap)
class _Tally:
    """One allowance: what it has spent, and what requests in flight hold of it."""

    forget_at: float
    spent: int = 0
    held: int = 0  # the sum of `holds`
    holds: dict[str, tuple[int, float]] = field(default_factory=dict)  # id -> (amount, lapses at)
    lapsed: set[str] = field(default_factory=set)  # holds that lapsed unsettled: a late settle still charges
    purged_at: float = 0.0

    @property
    def used(self) -> int:
        return self.spent + self.held

    def purge(self, now: float) -> None:
        if now - self.purged_at < _PURGE_EVERY_S:
            return
        self.purged_at = now
        for reservation_id, (amount, lapses_at) in list(self.holds.items()):
            if lapses_at <= now:
                del self.holds[reservation_id]
                self.held -= amount
                self.lapsed.add(reservation_id)


class MemoryCounters:
    shared = False  # other processes do not see these counters

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tallies: dict[str, _Tally] = {}
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    async def reserve(
        self, allowances: tuple[Allowance, ...], reservation: Reservation
    ) -> OverLimit | Unstarted | None:
        now = self._clock()
        counted = [self._counted(allowance, now) for allowance in allowances]
        if None in counted:
            unstarted = tuple(a for a, t in zip(allowances, counted, strict=True) if t is None and a.starts_at is None)
            if unstarted:
                return Unstarted(unstarted)
        tallies = [t or self._start(a, now) for a, t in zip(allowances, counted, strict=True)]
        for allowance, tally in zip(allowances, tallies, strict=True):
            tally.purge(now)
            if reservation.id in tally.holds:
                return None  # already held: a repeated reserve changes nothing
            if tally.used >= allowance.limit or tally.used + reservation.amount > allowance.limit:
                return OverLimit(allowance, tally.used)
        for tally in tallies:
            tally.holds[reservation.id] = (reservation.amount, now + reservation.expires_s)
            tally.held += reservation.amount
            tally.lapsed.discard(reservation.id)
        return None

    async def settle(self, allowances: tuple[Allowance, ...], reservation_id: str, actual: int) -> None:
        now = self._clock()
        for allowance in allowances:
            tally = self._counted(allowance, now)
            if tally is None:
                continue  # forgotten, or never held here: nothing to settle
            if (hold := tally.holds.pop(reservation_id, None)) is not None:
                tally.held -= hold[0]
            elif reservation_id in tally.lapsed:
                tally.lapsed.discard(reservation_id)
            else:
                continue  # settled already (or never held): charge it once only
            tally.spent += actual

    async def used(self, allowance: Allowance) -> int:
        now = self._clock()
        tally = self._counted(allowance, now)
        if tally is None:
            return 0
        tally.purge(now)
        return tally.used

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

    async def give_back(self, buckets: tuple[Bucket, ...]) -> None:
        now = self._clock()
        for bucket in buckets:
            self._buckets[bucket.key] = (min(float(bucket.capacity), self._level(bucket, now) + bucket.cost), now)

    async def ping(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    def _counted(self, allowance: Allowance, now: float) -> _Tally | None:
        """The allowance's tally, kept until `ttl_s` after it last changed; None once forgotten."""
        tally = self._tallies.get(allowance.key)
        if tally is None or tally.forget_at <= now:
            return None
        tally.forget_at = now + allowance.ttl_s
        return tally

    def _start(self, allowance: Allowance, now: float) -> _Tally:
        """A new tally for the allowance, from its `starts_at`."""
        tally = self._tallies[allowance.key] = _Tally(forget_at=now + allowance.ttl_s, spent=allowance.starts_at or 0)
        return tally

    def _level(self, bucket: Bucket, now: float) -> float:
        tokens, at = self._buckets.get(bucket.key, (float(bucket.capacity), now))
        return min(float(bucket.capacity), tokens + (now - at) * bucket.capacity / 60)
