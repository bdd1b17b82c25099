"""Relaying a streamed (SSE) answer event by event: each event goes to the client
as soon as it is whole, while the relay notes whether the stream reached its end
and keeps the events that carry usage. A stream that breaks, stalls or stops
short ends with an `error` event, which the OpenAI SDK raises, so the client sees
an error instead of a hang or a silently truncated answer.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import orjson

from providers.base import UpstreamReply
from providers.errors import FailureReason, UpstreamFailure
from providers.types import Surface

# The event that ends a complete stream, per surface. Chat ends with `data: [DONE]`.
_TERMINAL_EVENTS: dict[Surface, frozenset[bytes]] = {
    Surface.IMAGES_GENERATE: frozenset({b"image_generation.completed"}),
    Surface.IMAGES_EDIT: frozenset({b"image_edit.completed"}),
    Surface.RESPONSES: frozenset({b"response.completed", b"response.failed", b"response.incomplete"}),
    Surface.CHAT: frozenset(),
    Surface.EMBEDDINGS: frozenset(),
}
_TYPE_FIELD = re.compile(rb'"type"\s*:\s*"([^"]+)"')
_USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')
_NO_CHOICES = re.compile(rb'"choices"\s*:\s*\[\s*\]')


@dataclass(slots=True)
class StreamOutcome:
    """How a relayed stream ended, for the ledger."""

    events: int = 0
    completed: bool = False  # the surface's terminal event (or the upstream's own error) arrived
    usage_events: list[bytes] = field(default_factory=list)  # where the usage is
    error: str | None = None  # what we told the client went wrong
    reason: FailureReason | None = None


class SseScanner:
    """Cuts a byte stream into whole events, holding only the event in progress."""

    def __init__(self, surface: Surface) -> None:
        self._surface = surface
        self._terminal = _TERMINAL_EVENTS[surface]
        self._pending = bytearray()
        self.outcome = StreamOutcome()

    def feed(self, chunk: bytes) -> list[bytes]:
        """The events this chunk completes, each with the blank line that ends it."""
        search_from = max(len(self._pending) - 3, 0)
        self._pending += chunk
        events = []
        while True:
            end, gap = _event_end(self._pending, search_from)
            if end < 0:
                return events
            event = bytes(self._pending[: end + gap])
            del self._pending[: end + gap]
            search_from = 0
            self._note(event)
            events.append(event)

    def _note(self, event: bytes) -> None:
        if not event.strip():
            return
        self.outcome.events += 1
        name = _event_name(event)
        if name in self._terminal or name in (b"error", b"[DONE]"):
            self.outcome.completed = True
        if self._carries_usage(name, event):
            self.outcome.usage_events.append(event)

    def _carries_usage(self, name: bytes | None, event: bytes) -> bool:
        if self._surface is Surface.CHAT:
            return _USAGE_OBJECT.search(event) is not None  # chat events are small
        if self._surface.makes_images:
            return name is not None and name.endswith(b".completed")  # one per image
        return name in self._terminal


def _event_end(buffer: bytearray, start: int) -> tuple[int, int]:
    """Where the first event ends (a blank line) and the length of the blank line."""
    lf = buffer.find(b"\n\n", start)
    crlf = buffer.find(b"\r\n\r\n", start)
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf, 4
    return lf, 2 if lf >= 0 else 0


def _event_name(event: bytes) -> bytes | None:
    """The `event:` field, else the JSON `type` near the start of `data:`, else the raw
    data for the `[DONE]` sentinel. Only the head of the event is looked at."""
    head = event[:512]
    for line in head.splitlines():
        if line.startswith(b"event:"):
            return line[6:].strip()
        if line.startswith(b"data:"):
            data = line[5:].strip()
            if data == b"[DONE]":
                return data
            if data.startswith(b'{"error"'):
                return b"error"
            match = _TYPE_FIELD.search(data)
            return match.group(1) if match else None
    return None


def is_usage_only_chunk(event: bytes) -> bool:
    """The chat chunk that `stream_options.include_usage` adds: usage and no choices."""
    return _USAGE_OBJECT.search(event) is not None and _NO_CHOICES.search(event) is not None


def error_event(message: str, code: str) -> bytes:
    """An SSE error the OpenAI SDK raises as APIError (it raises on any `error` key)."""
    error = {"message": message, "type": "server_error", "param": None, "code": code}
    payload = {"type": "error", "code": code, "message": message, "param": None, "error": error}
    return b"event: error\ndata: " + orjson.dumps(payload) + b"\n\n"


async def relay_stream(
    reply: UpstreamReply,
    surface: Surface,
    provider: str,
    *,
    hide: Callable[[bytes], bool] | None = None,
    on_end: Callable[[StreamOutcome], None] | None = None,
) -> AsyncIterator[bytes]:
    """The client's copy of the upstream's stream; `hide` drops events the client did not ask for."""
    assert reply.stream is not None
    scanner = SseScanner(surface)
    outcome = scanner.outcome
    try:
        try:
            async for chunk in reply.stream:
                events = scanner.feed(chunk)
                if hide is not None:
                    events = [event for event in events if not hide(event)]
                if events:
                    yield b"".join(events)
        except UpstreamFailure as failure:
            outcome.error, outcome.reason = f"{failure.message}; the answer is incomplete", failure.reason
        else:
            if not outcome.completed:
                outcome.error = f"provider '{provider}' ended the stream before it completed"
                outcome.reason = FailureReason.BAD_UPSTREAM_RESPONSE
        if outcome.error is not None:
            yield error_event(f"{outcome.error}. Retry the request.", code="upstream_stream_interrupted")
    finally:
        await reply.aclose()
        if on_end is not None:
            on_end(outcome)
