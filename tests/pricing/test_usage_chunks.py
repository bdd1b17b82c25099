"""Usage read from an answer held as the chunks it arrived in (`AnswerBody`) is the
usage of the whole answer, wherever the chunks were cut: inside a `"b64_json"` key,
inside a value's quotes, inside the usage block, or into chunks shorter than a key."""

from __future__ import annotations

import base64
import itertools
import os

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.answer_body import AnswerBody
from providers.types import Surface
from proxy.pricing.usage import Metered, usage_from_body

B64 = [base64.b64encode(os.urandom(size)).decode() for size in (120_000, 110_000, 9)]

IMAGES = orjson.dumps(  # large: searched, not parsed; three images, the last one tiny
    {
        "created": 1_790_000_000,
        "background": "opaque",
        "data": [
            {"b64_json": B64[0], "revised_prompt": 'a "quoted" kite'},
            {"b64_json": B64[1]},
            {"b64_json": B64[2]},
        ],
        "output_format": "png",
        "quality": "high",
        "size": "1024x1536",
        "usage": {
            "input_tokens": 50,
            "input_tokens_details": {"text_tokens": 10, "image_tokens": 40},
            "output_tokens": 4160,
        },
    }
)
IMAGES_USAGE = (
    Metered(
        "gpt-image-2", text_input=10, image_input=40, image_output=4160, images=3, size="1024x1536", quality="high"
    ),
)

URLS = orjson.dumps(  # small: parsed whole; its images counted across the chunks all the same
    {
        "data": [{"url": f"https://files.example/{index}.png"} for index in range(5)],
        "size": "1024x1024",
        "quality": "low",
        "usage": {"input_tokens": 7, "output_tokens": 5 * 272},
    }
)
URLS_USAGE = (Metered("gpt-image-2", text_input=7, image_output=1360, images=5, size="1024x1024", quality="low"),)

TOOL = orjson.dumps(  # Responses with the image tool: large, its images are `result`s
    {
        "id": "resp_1",
        "output": [
            {"type": "image_generation_call", "result": B64[0], "size": "1024x1024", "quality": "medium"},
            {"type": "image_generation_call", "result": B64[1], "size": "1024x1024", "quality": "medium"},
            {"type": "message", "content": [{"type": "output_text", "text": "two foxes"}]},
        ],
        "size": "1024x1024",
        "quality": "medium",
        "tool_usage": {"image_gen": {"input_tokens": 12, "output_tokens": 2 * 1056}},
        "usage": {"input_tokens": 30, "input_tokens_details": {"cached_tokens": 10}, "output_tokens": 9},
    }
)
TOOL_USAGE = (
    Metered("gpt-5.4", text_input=20, cached_text_input=10, text_output=9),
    Metered("gpt-image-2", text_input=12, image_output=2112, images=2, size="1024x1024", quality="medium"),
)


def images(body: AnswerBody):
    return usage_from_body(Surface.IMAGES_GENERATE, body, model="gpt-image-2", image_model=None)


def tool(body: AnswerBody):
    return usage_from_body(Surface.RESPONSES, body, model="gpt-5.4", image_model="gpt-image-2")


def cut(data: bytes, *at: int) -> AnswerBody:
    edges = [0, *sorted(at), len(data)]
    return AnswerBody(data[start:end] for start, end in itertools.pairwise(edges))


def near_the_keys(data: bytes) -> set[int]:
    """Where a cut matters: within a key's length of every quote, and all of both ends
    (the small keys before the base64, the usage block after it)."""
    quotes = [index for index, byte in enumerate(data) if byte == ord('"')]
    points = {at + shift for at in quotes for shift in range(-12, 13)}
    points |= set(range(1, 400)) | set(range(len(data) - 700, len(data)))
    return {point for point in points if 0 < point < len(data)}


def test_the_whole_answers_read_as_expected():
    assert len(IMAGES) > 256 * 1024 and len(TOOL) > 256 * 1024 and len(URLS) < 256 * 1024
    assert images(AnswerBody.of(IMAGES)) == IMAGES_USAGE
    assert images(AnswerBody.of(URLS)) == URLS_USAGE
    assert tool(AnswerBody.of(TOOL)) == TOOL_USAGE


def test_an_image_answer_cut_in_two_anywhere_near_a_key_reads_the_same():
    for at in sorted(near_the_keys(IMAGES)):
        assert images(cut(IMAGES, at)) == IMAGES_USAGE, at


def test_a_small_image_answer_cut_in_two_at_every_byte_reads_the_same():
    for at in range(1, len(URLS)):
        assert images(cut(URLS, at)) == URLS_USAGE, at


def test_a_responses_answer_cut_in_two_anywhere_near_a_key_reads_the_same():
    for at in sorted(near_the_keys(TOOL)):
        assert tool(cut(TOOL, at)) == TOOL_USAGE, at


def test_a_key_spread_over_chunks_shorter_than_itself_is_still_found():
    for key in (b'"b64_json"', b'"url"', b'"result"'):
        for body, read, expected in (
            (IMAGES, images, IMAGES_USAGE),
            (URLS, images, URLS_USAGE),
            (TOOL, tool, TOOL_USAGE),
        ):
            start = body.find(key)
            if start < 0:
                continue
            for first in range(start - 2, start + len(key)):
                for short in range(1, len(key)):  # a middle chunk of 1 to len(key) - 1 bytes
                    at = (first, first + short, first + short + 1)
                    assert read(cut(body, *at)) == expected, (key, at)


def test_answers_in_chunks_of_a_few_bytes_read_the_same():
    for size in (1, 2, 3, 7, 10, 11):
        assert images(AnswerBody(URLS[at : at + size] for at in range(0, len(URLS), size))) == URLS_USAGE
    for size in (997, 4096, 65_536):
        assert images(AnswerBody(IMAGES[at : at + size] for at in range(0, len(IMAGES), size))) == IMAGES_USAGE
        assert tool(AnswerBody(TOOL[at : at + size] for at in range(0, len(TOOL), size))) == TOOL_USAGE


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(IMAGES) - 1), max_size=40))
def test_an_image_answer_cut_anywhere_reads_the_same(at):
    assert images(cut(IMAGES, *at)) == IMAGES_USAGE
