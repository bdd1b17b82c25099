"""Where budgets and rate limits keep their counters, and conversations their
bindings to providers: in this process's memory (`state.url: memory://`, one
replica) or in Redis (`redis://…`, shared by every replica and worker), a
single server or a Redis Cluster (`state.cluster: true`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from policies.counters import Counters

from ..config.schema import StateSettings
from .conversations import Binding, ConversationMap, MemoryConversations
from .health import StoreHealth
from .memory import MemoryCounters

__all__ = [
    "Binding",
    "ConversationMap",
    "MemoryConversations",
    "MemoryCounters",
    "StateStore",
    "StoreHealth",
    "conversation_ttl_s",
    "open_conversations",
    "open_state",
]


class StateStore(Counters, Protocol):
    shared: bool  # do other processes see these counters?

    async def ping(self) -> None:
        """Raise `StateUnavailable` unless the store answers promptly."""

    async def aclose(self) -> None:
        """Close the store, after a last try to write what waits for it."""


def open_state(settings: StateSettings, *, report_pending: Callable[[int], None] | None = None) -> StateStore:
    """`report_pending`: told how many writes wait for an unreachable store (Redis only)."""
    if settings.url.startswith("memory://"):
        return MemoryCounters()
    from .redis import RedisCounters  # redis-py takes 0.1 s to import: only when configured

    return RedisCounters(settings.url, prefix=settings.prefix, cluster=settings.cluster, report_pending=report_pending)


def open_conversations(settings: StateSettings) -> ConversationMap:
    if settings.url.startswith("memory://"):
        return MemoryConversations(conversation_ttl_s(settings))
    from .redis_conversations import RedisConversations

    return RedisConversations(
        settings.url, prefix=settings.prefix, ttl_s=conversation_ttl_s(settings), cluster=settings.cluster
    )


def conversation_ttl_s(settings: StateSettings) -> float:
    return settings.conversation_ttl_days * 86_400
