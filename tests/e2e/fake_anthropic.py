"""A stand-in for Anthropic's Messages API: a real HTTP server on loopback that
answers `POST /v1/messages` as Anthropic does, whole or as its SSE stream
(`message_start` with the input usage, `content_block_*`, `message_delta` with the
output usage, `message_stop`), so LiteLLM's own Anthropic client can talk to it
offline. Each answer's usage is kept, for a test to price it exactly."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from typing import Any

import orjson
from aiohttp import web

API_KEY = "sk-ant-upstream-fake"
MODEL_VERSION = "claude-sonnet-4-5-20250929"  # what Anthropic reports for the alias `claude-sonnet-4-5`
REPLY = ("The lighthouse ", "keeps its light ", "through the fog.")


class FakeAnthropic:
    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[dict[str, Any]] = []  # what each request asked
        self.usages: list[dict[str, int]] = []  # what each answer billed, in Anthropic's fields
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        threading.Thread(target=self._loop.run_forever, name="fake-anthropic", daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def close(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("x-api-key") != API_KEY:
            return _error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return _error(400, "invalid_request_error", "anthropic-version: header is required")
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body})
        prompt = orjson.dumps(body.get("messages") or [])
        # Varied per request, as a real prompt's would be; a cache hit on part of it.
        usage = {
            "input_tokens": 1000 + len(prompt),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 2048,
            "output_tokens": 37 + len(self.usages),
        }
        self.usages.append(usage)
        message = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": MODEL_VERSION,
            "content": [{"type": "text", "text": "".join(REPLY)}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                **usage,
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                "service_tier": "standard",
            },
        }
        headers = {"request-id": f"req_{uuid.uuid4().hex[:24]}"}
        if not body.get("stream"):
            return web.json_response(message, headers=headers, dumps=lambda value: orjson.dumps(value).decode())
        return await self._stream(request, message, usage, headers)

    async def _stream(
        self, request: web.Request, message: dict[str, Any], usage: dict[str, int], headers: dict[str, str]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={**headers, "content-type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        started = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 1}}
        text_block = {"type": "text", "text": ""}
        events: list[dict[str, Any]] = [
            {"type": "message_start", "message": started},
            {"type": "content_block_start", "index": 0, "content_block": text_block},
            {"type": "ping"},
            *({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}} for t in REPLY),
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
            {"type": "message_stop"},
        ]
        for event in events:  # each named as its `type`, as Anthropic sends them
            await response.write(b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n")
        await response.write_eof()
        return response


def _error(status: int, kind: str, message: str) -> web.Response:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return web.json_response(body, status=status, dumps=lambda value: orjson.dumps(value).decode())
