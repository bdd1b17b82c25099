"""Where each conversation lives: a Responses id (a response's, or a conversation's)
bound to the provider, upstream model and route that made it, for a while.

The map is its own small protocol, beside the counters of budgets and rate
limits: in this process's memory for one replica, in Redis for several. Each
operation is one round trip to the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

# OpenAI's ids are about 50 characters; longer ones are never bound or looked up.
MAX_ID_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Binding:
    provider: str
    model: str  # the upstream's name for the model (Azure: the deployment)
    route: str
    # Who may reach it: "team:NAME", else "key:ID"; None when the proxy runs open. Every
    # team reaches the upstream with the same provider key, so the upstream cannot tell them apart.
    owner: str | None = None

    def reachable_by(self, owner: str | None) -> bool:
        return self.owner is None or self.owner == owner


class ConversationMap(Protocol):
    shared: bool  # do other processes see these bindings?

    async def find(self, conversation_id: str) -> Binding | None:
        """Where the response or conversation `conversation_id` lives; None when it
        was never bound here, its binding expired, or it is longer than MAX_ID_LENGTH."""

    async def bind(self, conversation_ids: Sequence[str], binding: Binding) -> None:
        """Bind each id (up to MAX_ID_LENGTH long) to `binding` for the map's time to live."""

    async def aclose(self) -> None: ...


class MemoryConversations:
    """Bindings in a dict, oldest first. Every binding lives as long, so the oldest is
    always the first to expire: expired ones are purged from the front as new ones
    come, and past `limit` the oldest go early rather than let memory grow."""

    shared = False

    def __init__(self, ttl_s: float, *, limit: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._limit = limit
        self._clock = clock
        self._bindings: dict[str, tuple[Binding, float]] = {}  # id -> (binding, expires at)

    async def find(self, conversation_id: str) -> Binding | None:
        found = self._bindings.get(conversation_id) if len(conversation_id) <= MAX_ID_LENGTH else None
        if found is None or found[1] <= self._clock():
            return None
        return found[0]

    async def bind(self, conversation_ids: Sequence[str], binding: Binding) -> None:
        now = self._clock()
        for conversation_id in bindable(conversation_ids):
            self._bindings.pop(conversation_id, None)  # re-bound: it moves to the back
            self._bindings[conversation_id] = (binding, now + self._ttl_s)
        while self._bindings:
            oldest = next(iter(self._bindings))
            if len(self._bindings) <= self._limit and self._bindings[oldest][1] > now:
                break
            del self._bindings[oldest]

    async def aclose(self) -> None:
        pass


def bindable(conversation_ids: Sequence[str]) -> list[str]:
    return [conversation_id for conversation_id in conversation_ids if 0 < len(conversation_id) <= MAX_ID_LENGTH]
