"""The SSE relay: chunks pass through as they come, and a stream that breaks or
stops short ends with an error event instead of a silent truncation."""

from __future__ import annotations

import asyncio

import anyio
import orjson
import pytest

from providers.base import UpstreamReply
from providers.errors import FailureReason, UpstreamConnectError
from providers.types import Surface
from proxy.http.relay import RelayResponse
from proxy.pricing.usage import Relayed
from proxy.serving.streaming import SseScanner, is_usage_only_chunk, relay_stream

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
    closed, outcomes = [], []

    async def close():
        closed.append(True)

    reply = UpstreamReply(200, {}, stream=stream_of(*chunks(IMAGE_EVENTS, 20)), closer=close)
    relay = relay_stream(reply, Surface.IMAGES_GENERATE, "acme", on_end=outcomes.append)
    assert (await relay.__anext__()).startswith(b"event: image_generation.partial_image")
    await relay.aclose()  # what RelayResponse does when the client disconnects
    assert closed == [True]
    (outcome,) = outcomes
    assert outcome.client_closed and outcome.reason == FailureReason.CLIENT_CLOSED and outcome.error is None
    assert outcome.relayed == Relayed(partial_images=1, partial_images_since_image=1)


def chat_chunk(delta: dict) -> bytes:
    return (
        b"data: "
        + orjson.dumps({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]})
        + b"\n\n"
    )


def test_the_text_a_chat_stream_relays_is_counted():
    scanner = SseScanner(Surface.CHAT)
    scanner.feed(chat_chunk({"role": "assistant", "content": ""}))
    scanner.feed(chat_chunk({"content": "Hello, wörld"}))  # characters, not bytes
    tool_call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    scanner.feed(chat_chunk({"tool_calls": [tool_call]}) + chat_chunk({"refusal": "no"}) + b"data: [DONE]\n\n")
    assert scanner.outcome.relayed.text_chars == len("Hello, wörld") + len("f") + len('{"a":1}') + len("no")


def responses_event(kind: str, **fields) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **fields}) + b"\n\n"


def test_the_text_and_images_a_responses_stream_relays_are_counted():
    scanner = SseScanner(Surface.RESPONSES)
    for event in (
        responses_event("response.created", response={}),
        responses_event("response.image_generation_call.partial_image", partial_image_b64="AAAA"),
        responses_event("response.image_generation_call.partial_image", partial_image_b64="AAAA"),
        responses_event("response.image_generation_call.completed", item_id="ig_1"),
        responses_event("response.output_text.delta", delta="Here is "),
        responses_event("response.function_call_arguments.delta", delta='{"q":'),
        responses_event("response.audio.delta", delta="UklGRg=="),  # audio, not text
    ):
        scanner.feed(event)
    assert scanner.outcome.relayed == Relayed(text_chars=8 + 5, partial_images=2, images=1)
    assert not scanner.outcome.completed


async def test_a_client_that_leaves_an_image_stream_after_its_first_image_of_two_closed_it():
    partial = b'event: image_generation.partial_image\ndata: {"type":"image_generation.partial_image"}\n\n'
    completed = b'event: image_generation.completed\ndata: {"type":"image_generation.completed","usage":{}}\n\n'
    for images, closed_by_client in ((2, True), (1, False)):
        outcomes = []
        reply = UpstreamReply(200, {}, stream=stream_of(partial + completed, partial, completed))
        relay = relay_stream(reply, Surface.IMAGES_GENERATE, "acme", images=images, on_end=outcomes.append)
        await relay.__anext__()
        await relay.__anext__()
        await relay.aclose()
        (outcome,) = outcomes
        assert outcome.client_closed is closed_by_client
        assert outcome.relayed == Relayed(partial_images=2, images=1, partial_images_since_image=1)


async def test_a_cancelled_relay_still_closes_its_upstream_and_says_the_client_left():
    """Starlette cancels the relay's task group on `http.disconnect`: every await in it is
    cancelled again, so the upstream is closed under a shield."""
    closed, outcomes = [], []

    async def close():
        await asyncio.sleep(0.01)  # a close that has to wait
        closed.append(True)

    async def upstream():
        yield chat_chunk({"content": "Simulated reply "})
        await asyncio.Event().wait()  # the upstream is slow to send the rest
        yield b""

    relay = relay_stream(
        UpstreamReply(200, {}, stream=upstream(), closer=close), Surface.CHAT, "acme", on_end=outcomes.append
    )

    async def consume() -> None:
        async for _ in relay:
            pass

    async with anyio.create_task_group() as group:
        group.start_soon(consume)
        await asyncio.sleep(0.05)
        group.cancel_scope.cancel()
    assert closed == [True]
    (outcome,) = outcomes
    assert outcome.client_closed and outcome.relayed.text_chars == 16


async def test_a_relay_waiting_to_send_is_closed_as_soon_as_its_client_hangs_up():
    closed, outcomes = [], []

    async def close():
        closed.append(True)

    events = [chat_chunk({"content": "one "}), chat_chunk({"content": "two "}), b"data: [DONE]\n\n"]
    reply = UpstreamReply(200, {}, stream=stream_of(*events), closer=close)
    relay = relay_stream(reply, Surface.CHAT, "acme", on_end=outcomes.append)
    hung_up = asyncio.Event()

    async def send(message):
        if message["type"] == "http.response.body":
            hung_up.set()
            await asyncio.Event().wait()  # the client stopped reading: the write never drains

    async def receive():
        await hung_up.wait()
        return {"type": "http.disconnect"}

    response = RelayResponse(relay, media_type="text/event-stream")
    await response({"type": "http", "asgi": {"spec_version": "2.3"}}, receive, send)
    assert closed == [True]  # at once, not whenever the garbage collector finds the relay
    (outcome,) = outcomes
    assert outcome.client_closed and outcome.relayed.text_chars == len("one ")


async def test_a_stream_that_completed_is_not_closed_by_the_client_whenever_it_hangs_up():
    outcomes = []
    reply = UpstreamReply(200, {}, stream=stream_of(CHAT_EVENTS, b""))
    relay = relay_stream(reply, Surface.CHAT, "acme", on_end=outcomes.append)
    await relay.__anext__()  # [DONE] relayed; the client leaves before the upstream's end
    await relay.aclose()
    assert outcomes[0].completed and not outcomes[0].client_closed and outcomes[0].reason is None


async def test_a_usage_chunk_the_client_did_not_ask_for_is_hidden():
    usage_chunk = b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
    stream = CHAT_EVENTS.replace(b"data: [DONE]", usage_chunk + b"data: [DONE]")
    reply = UpstreamReply(200, {}, stream=stream_of(*chunks(stream, 9)))
    outcomes = []
    relay = relay_stream(reply, Surface.CHAT, "a", hide=is_usage_only_chunk, on_end=outcomes.append)
    out = [chunk async for chunk in relay]
    assert b"".join(out) == CHAT_EVENTS
    assert outcomes[0].usage_events == [usage_chunk]
