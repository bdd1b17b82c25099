"""The simulator's own cost per request, so that it is never what a test or a benchmark
of the proxy measures."""

from __future__ import annotations

import time

import orjson
from starlette.types import Message

from providers.simulator.app import Simulator

from .helpers import chat


async def _cpu_per_request(app: Simulator, path: str, body: bytes, rounds: int = 300) -> float:
    """Server CPU seconds per request, driving the ASGI app directly (no client costs)."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": b"",
        "headers": [(b"authorization", b"Bearer sk-test"), (b"content-type", b"application/json")],
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200

    await app(scope, receive, send)  # warm the image cache
    started = time.process_time()
    for _ in range(rounds):
        await app(scope, receive, send)
    return (time.process_time() - started) / rounds


async def test_chat_and_cached_images_cost_well_under_a_millisecond_of_cpu(app: Simulator) -> None:
    chat_cpu = await _cpu_per_request(app, "/v1/chat/completions", orjson.dumps(chat("hello there")))
    image_cpu = await _cpu_per_request(
        app,
        "/v1/images/generations",
        orjson.dumps({"model": "gpt-image-2", "prompt": "a cat", "size": "1024x1024", "quality": "low"}),
    )
    assert chat_cpu < 0.0005, chat_cpu
    assert image_cpu < 0.0005, image_cpu
