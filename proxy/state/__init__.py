"""Where budgets and rate limits keep their counters: in this process's memory
(`state.url: memory://`, one replica) or in Redis (`redis://…`, shared by
every replica and worker)."""

from __future__ import annotations

from ..config.schema import StateSettings
from .memory import MemoryCounters
from .redis import RedisCounters

__all__ = ["MemoryCounters", "RedisCounters", "StateStore", "open_state"]

StateStore = MemoryCounters | RedisCounters


def open_state(settings: StateSettings) -> StateStore:
    if settings.url.startswith("memory://"):
        return MemoryCounters()
    return RedisCounters(settings.url, prefix=settings.prefix)
