"""Bindings in Redis, shared by every replica: one key per id under the state
prefix, with Redis' own expiry. A lookup is one GET; binding a response (and its
conversation) is one pipelined round trip (on a Redis Cluster, one per master its
ids fall on: each key stands alone, so it needs no hash tag)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from ..errors import ConversationsUnavailable
from .conversations import MAX_ID_LENGTH, Binding, bindable
from .redis_client import STORE_ERRORS, StoreClient, Turns, client_failure, connect, ready, store_failure


class RedisConversations:
    shared = True

    def __init__(self, url: str, *, prefix: str, ttl_s: float, cluster: bool = False) -> None:
        self._redis: StoreClient = connect(url, cluster=cluster)
        self._turns = Turns(cluster=cluster)
        self._prefix = f"{prefix}:conversation:"
        self._ttl_s = max(int(ttl_s), 1)

    async def find(self, conversation_id: str) -> Binding | None:
        if len(conversation_id) > MAX_ID_LENGTH:
            return None
        try:
            client = await ready(self._redis)
            async with self._turns:
                value = await client.get(self._prefix + conversation_id)
        except STORE_ERRORS as error:
            raise _unavailable(f"says which provider holds '{conversation_id}'", error) from None
        except Exception as error:
            raise _unavailable(f"says which provider holds '{conversation_id}'", client_failure(error)) from None
        if value is None:
            return None
        return Binding(*orjson.loads(value))  # [provider, model, route, owner]; owner absent in older bindings

    async def bind(self, conversation_ids: Sequence[str], binding: Binding) -> None:
        value = orjson.dumps([binding.provider, binding.model, binding.route, binding.owner])
        try:
            client = await ready(self._redis)
            async with self._turns, client.pipeline(transaction=False) as pipe:
                for conversation_id in bindable(conversation_ids):
                    pipe.set(self._prefix + conversation_id, value, ex=self._ttl_s)
                await pipe.execute()
        except STORE_ERRORS as error:
            raise _unavailable("keeps which provider made each response", error) from None
        except Exception as error:
            raise _unavailable("keeps which provider made each response", client_failure(error)) from None

    async def aclose(self) -> None:
        await self._redis.aclose()


def _unavailable(what: str, error: Exception | str) -> ConversationsUnavailable:
    cause = error if isinstance(error, str) else store_failure(error)
    return ConversationsUnavailable(
        f"Tollgate cannot reach its state store (Redis), which {what} ({cause}). "
        "Retry shortly; operators: check `state.url`."
    )
