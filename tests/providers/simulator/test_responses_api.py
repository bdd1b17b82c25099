"""The simulator's Responses API (providers/simulator/responses_api.py): text, the
image tool with its usage apart, and the stream's event sequence."""

from __future__ import annotations

import base64

import httpx
import orjson

from providers.image_tokens import image_input_tokens, text_tokens

from .helpers import decode, error_of, png_bytes, sse_events


async def test_responses_refuses_an_image_model(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/responses", json={"model": "gpt-image-2", "input": "draw"})
    error = error_of(response)
    assert response.status_code == 400
    assert (error["type"], error["param"]) == ("invalid_request_error", "model")
    assert error["message"] == "The requested model 'gpt-image-2' is not supported with the Responses API."


async def test_responses_text_only(client: httpx.AsyncClient) -> None:
    body = (await client.post("/v1/responses", json={"model": "gpt-5.4", "input": "tell me a joke"})).json()
    assert (body["object"], body["status"], body["model"]) == ("response", "completed", "gpt-5.4")
    assert body["id"].startswith("resp_")
    [message] = body["output"]
    assert message["type"] == "message"
    assert "tell me a joke" in message["content"][0]["text"]
    assert body["usage"]["input_tokens"] == text_tokens("tell me a joke")
    assert body["usage"]["input_tokens_details"]["cached_tokens"] == 0
    assert body["usage"]["output_tokens_details"] == {"reasoning_tokens": 0}
    assert "tool_usage" not in body


async def test_responses_image_tool_reports_tool_usage_apart(client: httpx.AsyncClient) -> None:
    reference = "data:image/png;base64," + base64.b64encode(png_bytes(800, 600)).decode()
    prompt = "make this a watercolor"
    body = (
        await client.post(
            "/v1/responses",
            json={
                "model": "gpt-5.4",
                "input": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_text", "text": prompt},
                            {"type": "input_image", "image_url": reference},
                        ],
                    }
                ],
                "tools": [
                    {"type": "image_generation", "size": "1536x1024", "quality": "high", "output_format": "webp"}
                ],
            },
        )
    ).json()
    call, message = body["output"]
    assert call["type"] == "image_generation_call" and call["status"] == "completed"
    assert call["id"].startswith("ig_")
    assert (call["size"], call["quality"], call["output_format"], call["background"]) == (
        "1536x1024",
        "high",
        "webp",
        "opaque",
    )
    assert call["revised_prompt"] == prompt
    picture = decode(call["result"])
    assert (picture.format, picture.size) == ("WEBP", (1536, 1024))
    assert message["type"] == "message"
    image_gen = body["tool_usage"]["image_gen"]
    assert image_gen["input_tokens_details"] == {
        "image_tokens": image_input_tokens(800, 600),
        "text_tokens": text_tokens(prompt),
    }
    assert image_gen["output_tokens"] == 5488
    assert image_gen["output_tokens_details"] == {"image_tokens": 5488, "text_tokens": 0}
    assert image_gen["total_tokens"] == image_gen["input_tokens"] + 5488
    assert body["usage"]["output_tokens"] == text_tokens(message["content"][0]["text"])


async def test_responses_tool_defaults_and_size_errors(client: httpx.AsyncClient) -> None:
    body = (
        await client.post(
            "/v1/responses", json={"model": "gpt-5.4", "input": "a cat", "tools": [{"type": "image_generation"}]}
        )
    ).json()
    call = body["output"][0]
    assert (call["size"], call["quality"]) == ("1024x1024", "medium")
    assert body["tool_usage"]["image_gen"]["output_tokens"] == 1756
    bad = await client.post(
        "/v1/responses",
        json={"model": "gpt-5.4", "input": "a cat", "tools": [{"type": "image_generation", "size": "1000x1000"}]},
    )
    assert (bad.status_code, error_of(bad)["param"]) == (400, "tools")


async def test_responses_stream_sequence(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/responses",
        json={
            "model": "gpt-5.4",
            "input": "a cat",
            "stream": True,
            "tools": [{"type": "image_generation", "quality": "low", "partial_images": 2}],
        },
    )
    events = [(name, orjson.loads(data)) for name, data in sse_events(response.content)]
    names = [name for name, _ in events]
    assert names[:8] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.image_generation_call.in_progress",
        "response.image_generation_call.generating",
        "response.image_generation_call.partial_image",
        "response.image_generation_call.partial_image",
        "response.image_generation_call.completed",
    ]
    assert "response.output_text.delta" in names and names[-1] == "response.completed"
    assert all(payload["type"] == name for name, payload in events)
    assert [payload["sequence_number"] for _, payload in events] == list(range(len(events)))
    final = events[-1][1]["response"]
    assert final["tool_usage"]["image_gen"]["output_tokens"] == 196 + 2 * 100
    deltas = "".join(payload["delta"] for name, payload in events if name == "response.output_text.delta")
    assert deltas == final["output"][1]["content"][0]["text"]
    assert b"[DONE]" not in response.content
