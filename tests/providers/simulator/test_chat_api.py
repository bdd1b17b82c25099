"""The simulator's chat completions (providers/simulator/chat_api.py), whole and
streamed, with the usage a client asks for."""

from __future__ import annotations

import httpx
import orjson

from providers.image_tokens import text_tokens

from .helpers import sse_events


async def test_chat_completion(client: httpx.AsyncClient) -> None:
    messages = [
        {"role": "system", "content": "be terse"},
        {"role": "user", "content": [{"type": "text", "text": "what is a tollgate"}]},
    ]
    body = (await client.post("/v1/chat/completions", json={"model": "gpt-4.1", "messages": messages})).json()
    assert body["object"] == "chat.completion"
    text = body["choices"][0]["message"]["content"]
    assert "what is a tollgate" in text
    assert body["usage"]["prompt_tokens"] == text_tokens("be terse") + text_tokens("what is a tollgate")
    assert body["usage"]["completion_tokens"] == text_tokens(text)
    assert body["usage"]["prompt_tokens_details"]["cached_tokens"] == 0


async def test_chat_stream_with_usage(client: httpx.AsyncClient) -> None:
    request = {"model": "gpt-4.1", "stream": True, "messages": [{"role": "user", "content": "hello simulator"}]}
    plain = sse_events((await client.post("/v1/chat/completions", json=request)).content)
    with_usage = sse_events(
        (await client.post("/v1/chat/completions", json={**request, "stream_options": {"include_usage": True}})).content
    )
    assert plain[-1] == (None, "[DONE]") and with_usage[-1] == (None, "[DONE]")
    chunks = [orjson.loads(data) for _, data in with_usage[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    assert all(chunk["usage"] is None for chunk in chunks[:-1])
    text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks[:-1])
    assert "hello simulator" in text
    assert len(plain) == len(with_usage) - 1
