"""The SSE relay: chunks pass through as they come, and a stream that breaks or
stops short ends with an error event instead of a silent truncation."""

from __future__ import annotations

import orjson
import pytest

from providers.base import UpstreamReply
from providers.errors import FailureReason, UpstreamConnectError
from providers.types import Surface
from proxy.streaming import SseScanner, is_usage_only_chunk, relay_stream

IMAGE_EVENTS = (
    b'event: image_generation.partial_image\ndata: {"type":"image_generation.partial_image","b64_json":"AAAA"}\n\n'
    b'event: image_generation.completed\ndata: {"type":"image_generation.completed","usage":{"output_tokens":196}}\n\n'
)
CHAT_EVENTS = b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n'


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 7, 64, 10_000])
def test_events_are_found_whatever_the_chunking(size):
    scanner = SseScanner(Surface.IMAGES_GENERATE)
    for chunk in chunks(IMAGE_EVENTS, size):
        scanner.feed(chunk)
    assert scanner.outcome.events == 2 and scanner.outcome.completed
    (usage_event,) = scanner.outcome.usage_events
    assert b'"usage"' in usage_event


def test_crlf_framing_and_events_without_an_event_line():
    scanner = SseScanner(Surface.RESPONSES)
    scanner.feed(b'data: {"type":"response.created"}\r\n\r\n')
    assert not scanner.outcome.completed
    scanner.feed(b'data: {"type":"response.completed","response":{}}\r\n\r\n')
    assert scanner.outcome.completed and scanner.outcome.events == 2


def test_chat_completes_on_done():
    scanner = SseScanner(Surface.CHAT)
    scanner.feed(CHAT_EVENTS[:-12])
    assert not scanner.outcome.completed
    scanner.feed(CHAT_EVENTS[-12:])
    assert scanner.outcome.completed


async def stream_of(*items):
    for item in items:
        if isinstance(item, Exception):
            raise item
        yield item


async def relayed(reply: UpstreamReply, surface: Surface) -> tuple[list[bytes], list]:
    outcomes = []
    out = [chunk async for chunk in relay_stream(reply, surface, "acme", on_end=outcomes.append)]
    return out, outcomes


async def test_a_complete_stream_passes_through_unchanged_and_is_closed():
    closed = []

    async def close():
        closed.append(True)

    reply = UpstreamReply(200, {}, stream=stream_of(*chunks(IMAGE_EVENTS, 50)), closer=close)
    out, (outcome,) = await relayed(reply, Surface.IMAGES_GENERATE)
    assert b"".join(out) == IMAGE_EVENTS
    first, second = IMAGE_EVENTS.split(b"\n\n")[:2]
    assert out == [first + b"\n\n", second + b"\n\n"]  # event by event, each whole
    assert outcome.completed and outcome.error is None and closed == [True]


async def test_a_broken_stream_ends_with_an_error_event_the_sdk_raises():
    broken = UpstreamConnectError("provider 'acme' broke off")
    reply = UpstreamReply(200, {}, stream=stream_of(IMAGE_EVENTS[:130], broken))
    out, (outcome,) = await relayed(reply, Surface.IMAGES_GENERATE)
    assert out[0] == IMAGE_EVENTS.split(b"\n\n")[0] + b"\n\n"  # the whole event before the break
    assert len(out) == 2  # and not the half event after it
    assert out[-1].startswith(b"event: error\ndata: ")
    error = orjson.loads(out[-1].split(b"data: ", 1)[1])["error"]
    assert "broke off" in error["message"] and error["code"] == "upstream_stream_interrupted"
    assert outcome.reason == FailureReason.CONNECT_ERROR and not outcome.completed


async def test_a_stream_that_stops_short_is_an_error_too():
    reply = UpstreamReply(200, {}, stream=stream_of(CHAT_EVENTS[:-14]))
    out, (outcome,) = await relayed(reply, Surface.CHAT)
    assert b"ended the stream before it completed" in out[-1]
    assert outcome.reason == FailureReason.BAD_UPSTREAM_RESPONSE


async def test_a_client_that_goes_away_closes_the_upstream_stream():
    closed = []

    async def close():
        closed.append(True)

    reply = UpstreamReply(200, {}, stream=stream_of(*chunks(IMAGE_EVENTS, 20)), closer=close)
    relay = relay_stream(reply, Surface.IMAGES_GENERATE, "acme")
    assert (await relay.__anext__()).startswith(b"event: image_generation.partial_image")
    await relay.aclose()  # what Starlette does when the client disconnects
    assert closed == [True]


async def test_a_usage_chunk_the_client_did_not_ask_for_is_hidden():
    usage_chunk = b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
    stream = CHAT_EVENTS.replace(b"data: [DONE]", usage_chunk + b"data: [DONE]")
    reply = UpstreamReply(200, {}, stream=stream_of(*chunks(stream, 9)))
    outcomes = []
    relay = relay_stream(reply, Surface.CHAT, "a", hide=is_usage_only_chunk, on_end=outcomes.append)
    out = [chunk async for chunk in relay]
    assert b"".join(out) == CHAT_EVENTS
    assert outcomes[0].usage_events == [usage_chunk]
