"""Relaying a streamed (SSE) answer event by event: each event goes to the client
as soon as it is whole, while the relay notes whether the stream reached its end,
keeps the events that carry usage and counts the output it passed on. A stream
that breaks, stalls or stops short ends with an `error` event, which the OpenAI
SDK raises, so the client sees an error instead of a hang or a silently truncated
answer. A client that hangs up first has the upstream closed at once, so that it
stops generating, and the stream is recorded as closed by the client.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
import orjson

from providers.base import UpstreamReply
from providers.errors import FailureReason, UpstreamFailure
from providers.types import Call, JsonBody, Surface

from ..pricing.usage import Relayed

# The event that ends a complete stream, per surface. Chat ends with `data: [DONE]`.
_TERMINAL_EVENTS: dict[Surface, frozenset[bytes]] = {
    Surface.IMAGES_GENERATE: frozenset({b"image_generation.completed"}),
    Surface.IMAGES_EDIT: frozenset({b"image_edit.completed"}),
    Surface.RESPONSES: frozenset({b"response.completed", b"response.failed", b"response.incomplete"}),
    Surface.CHAT: frozenset(),
    Surface.EMBEDDINGS: frozenset(),
}
# The event that delivers a finished image, per surface.
_IMAGE_EVENTS: dict[Surface, frozenset[bytes]] = {
    **_TERMINAL_EVENTS,
    Surface.RESPONSES: frozenset({b"response.image_generation_call.completed"}),
}
_TYPE_FIELD = re.compile(rb'"type"\s*:\s*"([^"]+)"')
_USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')
_NO_CHOICES = re.compile(rb'"choices"\s*:\s*\[\s*\]')
_PARTIAL_IMAGE = b"partial_image"  # image_generation.partial_image, response.image_generation_call.partial_image, …
_NOT_TEXT_DELTAS = frozenset({b"response.audio.delta"})  # base64 audio, not text
# Chat delta fields that are not generated text: labels, and audio (base64, billed as audio).
_NOT_TEXT = frozenset({"role", "id", "type", "index", "audio"})


@dataclass(slots=True)
class StreamOutcome:
    """How a relayed stream ended, for the ledger."""

    events: int = 0
    completed: bool = False  # the surface's terminal event (or the upstream's own error) arrived
    usage_events: list[bytes] = field(default_factory=list)  # where the usage is
    error: str | None = None  # what we told the client went wrong
    reason: FailureReason | None = None
    client_closed: bool = False  # the client hung up before the stream completed
    relayed: Relayed = field(default_factory=Relayed)


class SseScanner:
    """Cuts a byte stream into whole events, holding only the event in progress."""

    def __init__(self, surface: Surface) -> None:
        self._surface = surface
        self._terminal = _TERMINAL_EVENTS[surface]
        self._image_events = _IMAGE_EVENTS[surface]
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
        self._count_output(name, event)

    def _count_output(self, name: bytes | None, event: bytes) -> None:
        """What the client has been given, should it hang up before the usage comes.
        Only small events are parsed: text deltas and chat chunks, never an image."""
        relayed = self.outcome.relayed
        if self._surface is Surface.CHAT:
            relayed.text_chars += _chat_text_chars(event)
        elif name is None:
            return
        elif name in self._image_events:
            relayed.images += 1
            relayed.partial_images_since_image = 0
        elif name.endswith(_PARTIAL_IMAGE):
            relayed.partial_images += 1
            relayed.partial_images_since_image += 1
        elif name.endswith(b".delta") and name not in _NOT_TEXT_DELTAS:
            delta = _data(event).get("delta")
            relayed.text_chars += len(delta) if isinstance(delta, str) else 0

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


def _data(event: bytes) -> dict[str, Any]:
    """The JSON object of an event's `data:` line; empty when it has none."""
    start = event.find(b"data:")
    try:
        data = orjson.loads(event[start + 5 :]) if start >= 0 else None
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _chat_text_chars(event: bytes) -> int:
    """The characters a chat chunk's deltas add: content, refusal, reasoning, tool calls."""
    chars = 0
    for choice in _data(event).get("choices") or ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict):
            chars += _text_chars(delta)
    return chars


def _text_chars(value: object) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_text_chars(item) for key, item in value.items() if item and key not in _NOT_TEXT)
    if isinstance(value, list):
        return sum(_text_chars(item) for item in value)
    return 0


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
    images: int = 1,
    hide: Callable[[bytes], bool] | None = None,
    on_end: Callable[[StreamOutcome], None] | None = None,
) -> AsyncGenerator[bytes]:
    """The client's copy of the upstream's stream; `hide` drops events the client did not ask for.
    `images`: how many an image stream was asked for (its `n`)."""
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
    except (asyncio.CancelledError, GeneratorExit):
        # The response stopped reading: its client hung up (Starlette cancels the relay on
        # `http.disconnect`; the HTTP face's RelayResponse closes it). Nobody is left to read an error event.
        if outcome.error is None and not _answered_whole(outcome, surface, images):
            outcome.client_closed, outcome.reason = True, FailureReason.CLIENT_CLOSED
        raise
    finally:
        with anyio.CancelScope(shield=True):  # cancelled or not, the upstream is closed now
            await reply.aclose()
        if on_end is not None:
            on_end(outcome)


def _answered_whole(outcome: StreamOutcome, surface: Surface, images: int) -> bool:
    """The client was given the whole answer: the terminal event, and each image it asked for.
    (An image stream is `completed` at its first image: how OpenAI streams `n` > 1 is not
    documented, so the stream is not failed for fewer; a client that leaves early is told apart.)"""
    return outcome.completed and (not surface.makes_images or outcome.relayed.images >= images)


def with_stream_usage(call: Call) -> tuple[Call, bool]:
    """A chat stream reports its usage only when asked to. Ask on the client's
    behalf, so its cost comes from usage and not from a guess; the returned flag
    says the client did not ask, so the usage chunk must not reach it."""
    if call.surface is not Surface.CHAT or not call.stream or not isinstance(call.body, JsonBody):
        return call, False
    options = call.body.fields.get("stream_options")  # an object or null: checked at intake
    if options and options.get("include_usage"):
        return call, False
    fields = {**call.body.fields, "stream_options": {**(options or {}), "include_usage": True}}
    return replace(call, body=JsonBody(orjson.dumps(fields), fields)), True
