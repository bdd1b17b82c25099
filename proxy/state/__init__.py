"""Where budgets and rate limits keep their counters: in this process's memory
(`state.url: memory://`, one replica) or in Redis (`redis://…`, shared by
every replica and worker)."""

from __future__ import annotations

from typing import Protocol

from policies.counters import Counters

from ..config.schema import StateSettings
from .health import StoreHealth
from .memory import MemoryCounters

__all__ = ["MemoryCounters", "StateStore", "StoreHealth", "open_state"]


class StateStore(Counters, Protocol):
    shared: bool  # do other processes see these counters?

    async def ping(self) -> None:
        """Raise `StateUnavailable` unless the store answers promptly."""

    async def aclose(self) -> None:
        """Close the store, after a last try to write what waits for it."""


def open_state(settings: StateSettings) -> StateStore:
    if settings.url.startswith("memory://"):
        return MemoryCounters()
    from .redis import RedisCounters  # redis-py takes 0.1 s to import: only when configured

    return RedisCounters(settings.url, prefix=settings.prefix)
