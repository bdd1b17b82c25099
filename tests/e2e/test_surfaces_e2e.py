"""Responses (with the image tool), chat, embeddings and the model list, through the proxy."""

from __future__ import annotations

import base64
import io

import httpx
from PIL import Image

from .harness import marker, marker_id, upstream_requests


def test_responses_with_the_image_generation_tool(proxy):
    raw = proxy.client().responses.with_raw_response.create(
        model="gpt-5.4",
        input="draw a lighthouse",
        tools=[{"type": "image_generation", "quality": "low", "size": "1024x1536", "output_format": "jpeg"}],
    )
    response = raw.parse()
    call = next(item for item in response.output if item.type == "image_generation_call")
    image = Image.open(io.BytesIO(base64.b64decode(call.result)))
    assert (image.format, image.size) == ("JPEG", (1024, 1536))
    assert response.usage.input_tokens > 0
    assert raw.headers["x-tollgate-route"] == "gpt-5.4"
    assert raw.headers["x-tollgate-billing-owner"] == "openai/org-test"


def test_responses_stream_end_with_completed_and_usage(proxy):
    events = list(
        proxy.client().responses.create(
            model="gpt-5.4", input="draw a cat", stream=True, tools=[{"type": "image_generation", "quality": "low"}]
        )
    )
    types = [event.type for event in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "response.image_generation_call.completed" in types
    assert events[-1].response.usage.total_tokens > 0


def test_chat_streams_chunks_and_the_usage_chunk(proxy):
    chunks = list(
        proxy.client().chat.completions.create(
            model="gpt-5.4-mini",
            messages=[{"role": "user", "content": "hello there"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert "hello there" in text
    assert chunks[-1].usage.total_tokens > 0


def test_chat_body_reaches_the_upstream_unchanged(proxy, simulator):
    text = f"keep my fields {marker()}"
    proxy.client().chat.completions.create(
        model="gpt-5.4-mini",
        messages=[{"role": "user", "content": text}],
        temperature=0.25,
        seed=7,
        metadata={"prompt_version": "v3"},
    )
    (seen,) = upstream_requests(simulator, marker_id(text))
    assert seen["fields"]["temperature"] == 0.25 and seen["fields"]["seed"] == 7
    assert seen["fields"]["metadata"] == {"prompt_version": "v3"}


def test_embeddings(proxy):
    result = proxy.client().embeddings.create(model="text-embedding-3-small", input=["a", "b"], dimensions=8)
    assert [len(item.embedding) for item in result.data] == [8, 8]


def test_models_lists_the_routes(proxy):
    ids = [model.id for model in proxy.client().models.list()]
    assert ids == ["gpt-image-2", "gpt-5.4", "gpt-5.4-mini", "text-embedding-3-small"]


def test_health_and_readiness(proxy):
    assert httpx.get(f"{proxy.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{proxy.url}/readyz").json()
    assert ready["status"] == "ready" and len(ready["config_version"]) == 12
