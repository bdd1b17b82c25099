"""What an OpenAI project keeps of its Responses: every Response made with
`store: true` (the default), its input items, and the Conversations made in it.

A follow-up naming a response or conversation that this upstream did not make is
refused, as OpenAI refuses it; that is how a proxy that sends a conversation to
the wrong provider gets caught. Everything is kept per upstream name (the path
prefix), so one simulator playing two providers keeps their responses apart, as
two accounts would.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from .json_bytes import dumps_with_image

RESPONSES_KEPT = 10_000  # per simulator: the oldest go first, like an expiry


@dataclass(frozen=True, slots=True)
class StoredResponse:
    response: dict[str, Any]  # the Response object; its image, if any, as IMAGE_PLACEHOLDER
    image_b64: bytes
    input_items: list[dict[str, Any]]
    background: bool

    def body(self) -> bytes:
        return dumps_with_image(self.response, self.image_b64)


class ResponseStore:
    def __init__(self, limit: int = RESPONSES_KEPT) -> None:
        self._limit = limit
        self._responses: dict[tuple[str, str], StoredResponse] = {}
        self._conversations: dict[tuple[str, str], dict[str, Any]] = {}

    def keep(self, upstream: str, stored: StoredResponse) -> None:
        self._responses[(upstream, stored.response["id"])] = stored
        while len(self._responses) > self._limit:
            del self._responses[next(iter(self._responses))]

    def find(self, upstream: str, response_id: str) -> StoredResponse | None:
        return self._responses.get((upstream, response_id))

    def forget(self, upstream: str, response_id: str) -> bool:
        return self._responses.pop((upstream, response_id), None) is not None

    def open_conversation(self, upstream: str, metadata: dict[str, Any]) -> dict[str, Any]:
        conversation = {
            "id": "conv_sim" + os.urandom(24).hex(),
            "object": "conversation",
            "created_at": int(time.time()),
            "metadata": metadata,
        }
        self._conversations[(upstream, conversation["id"])] = conversation
        while len(self._conversations) > self._limit:
            del self._conversations[next(iter(self._conversations))]
        return conversation

    def has_conversation(self, upstream: str, conversation_id: str) -> bool:
        return (upstream, conversation_id) in self._conversations

    def clear(self) -> None:
        self._responses.clear()
        self._conversations.clear()


def input_items(value: Any) -> list[dict[str, Any]]:
    """A request's `input` as the items OpenAI lists for it, each with an id."""
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    if not isinstance(value, list):
        return []
    items = []
    for item in value:
        if not isinstance(item, dict):
            continue
        if item.get("type", "message") == "message":
            content = item.get("content")
            parts = [{"type": "input_text", "text": content}] if isinstance(content, str) else content or []
            item = {"type": "message", "role": item.get("role", "user"), "status": "completed", "content": parts}
        items.append({"id": item.get("id") or "msg_sim" + os.urandom(12).hex(), **item})
    return items
