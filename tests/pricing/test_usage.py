"""Usage read from real simulator answers, parsed whole when small and searched
when large; both ways must agree, and image output tokens stay image tokens."""

from __future__ import annotations

import base64
import os

import httpx
import orjson
import pytest

from providers.answer_body import AnswerBody
from providers.types import Surface
from proxy.pricing.usage import Metered, usage_from_body, usage_from_events
from proxy.serving.streaming import SseScanner

BIG_B64 = base64.b64encode(os.urandom(600_000)).decode()  # makes a body too large to parse whole


@pytest.fixture(scope="module")
def simulator_url():
    from proxy.serving.simulated_upstreams import InProcessSimulator

    simulator = InProcessSimulator()
    yield simulator.start() + "/v1"
    simulator.stop()


def post(url: str, path: str, body: dict) -> bytes:
    response = httpx.post(f"{url}/{path}", json=body, headers={"authorization": "Bearer k"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.content


def enlarged(body: bytes, field: str) -> bytes:
    """The same answer with its base64 swapped for 800 KB of it."""
    parsed = orjson.loads(body)
    for item in parsed.get("data") or parsed.get("output") or ():
        if field in item:
            item[field] = BIG_B64
    return orjson.dumps(parsed)


def test_images_usage_output_tokens_are_image_tokens(simulator_url):
    body = post(
        simulator_url,
        "images/generations",
        {"model": "gpt-image-2", "prompt": "a cat on a mat", "size": "1536x1024", "quality": "low", "n": 2},
    )
    small = usage_from_body(Surface.IMAGES_GENERATE, AnswerBody.of(body), model="gpt-image-2", image_model=None)
    big_body = enlarged(body, "b64_json")
    assert len(big_body) > 256 * 1024
    big = usage_from_body(Surface.IMAGES_GENERATE, AnswerBody.of(big_body), model="gpt-image-2", image_model=None)
    assert (
        small
        == big
        == (Metered("gpt-image-2", text_input=4, image_output=316, images=2, size="1536x1024", quality="low"),)
    )


def test_output_tokens_details_split_text_from_image_tokens():
    body = orjson.dumps(
        {
            "size": "1024x1024",
            "quality": "high",
            "data": [{"b64_json": "AA"}],
            "usage": {
                "input_tokens": 60,
                "input_tokens_details": {"text_tokens": 20, "image_tokens": 40},
                "output_tokens": 7030,
                "output_tokens_details": {"image_tokens": 7024, "text_tokens": 6},
            },
        }
    )
    (metered,) = usage_from_body(Surface.IMAGES_EDIT, AnswerBody.of(body), model="gpt-image-2", image_model=None)
    assert (metered.text_input, metered.image_input, metered.image_output, metered.text_output) == (20, 40, 7024, 6)


def test_responses_meter_the_mainline_model_and_the_image_tool_apart(simulator_url):
    body = post(
        simulator_url,
        "responses",
        {
            "model": "gpt-5.4",
            "input": "draw a fox",
            "tools": [{"type": "image_generation", "quality": "low", "size": "1024x1536"}],
        },
    )
    small = usage_from_body(Surface.RESPONSES, AnswerBody.of(body), model="gpt-5.4", image_model="gpt-image-2")
    big = usage_from_body(
        Surface.RESPONSES, AnswerBody.of(enlarged(body, "result")), model="gpt-5.4", image_model="gpt-image-2"
    )
    assert small == big
    main, tool = small
    assert main.model == "gpt-5.4" and main.text_input > 0 and main.text_output > 0
    assert (tool.model, tool.image_output, tool.images, tool.size, tool.quality) == (
        "gpt-image-2",
        158,
        1,
        "1024x1536",
        "low",
    )


def test_chat_usage_with_cached_tokens():
    body = orjson.dumps(
        {
            "object": "chat.completion",
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 64}},
        }
    )
    assert usage_from_body(Surface.CHAT, AnswerBody.of(body), model="m", image_model=None) == (
        Metered("m", text_input=36, cached_text_input=64, text_output=20),
    )


def test_a_body_without_usage_has_none():
    assert (
        usage_from_body(Surface.CHAT, AnswerBody.of(b'{"object": "chat.completion"}'), model="m", image_model=None)
        is None
    )
    assert usage_from_body(Surface.CHAT, AnswerBody.of(b"not json"), model="m", image_model=None) is None


def stream_usage(simulator_url: str, path: str, body: dict, surface: Surface, **models) -> tuple:
    scanner = SseScanner(surface)
    with httpx.stream(
        "POST", f"{simulator_url}/{path}", json={**body, "stream": True}, headers={"authorization": "Bearer k"}
    ) as response:
        for chunk in response.iter_bytes():
            scanner.feed(chunk)
    return usage_from_events(surface, scanner.outcome.usage_events, **models)


def test_an_image_stream_sums_the_usage_of_its_completed_events(simulator_url):
    body = {"model": "gpt-image-2", "prompt": "two owls", "quality": "low", "n": 2, "partial_images": 1}
    (metered,) = stream_usage(
        simulator_url, "images/generations", body, Surface.IMAGES_GENERATE, model="gpt-image-2", image_model=None
    )
    assert (metered.images, metered.image_output) == (2, 2 * (196 + 100))  # each partial adds 100 tokens


def test_a_chat_stream_reads_the_usage_chunk(simulator_url):
    body = {
        "model": "gpt-5.4-mini",
        "messages": [{"role": "user", "content": "hello"}],
        "stream_options": {"include_usage": True},
    }
    (metered,) = stream_usage(simulator_url, "chat/completions", body, Surface.CHAT, model="m", image_model=None)
    assert metered.text_input > 0 and metered.text_output > 0


def test_a_responses_stream_reads_usage_from_response_completed(simulator_url):
    body = {"model": "gpt-5.4", "input": "draw", "tools": [{"type": "image_generation", "quality": "medium"}]}
    main, tool = stream_usage(
        simulator_url, "responses", body, Surface.RESPONSES, model="gpt-5.4", image_model="gpt-image-2"
    )
    assert main.text_output > 0 and (tool.image_output, tool.images) == (1756, 1)
