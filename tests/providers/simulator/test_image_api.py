"""The simulator's Images API (providers/simulator/image_api.py): generations and edits,
whole and streamed, with exact usage, and OpenAI's refusals."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
import pytest

from providers.image_tokens import image_input_tokens, image_output_tokens, text_tokens

from .helpers import decode, error_of, png_bytes, sse_events


async def test_generation_returns_real_images_and_exact_usage(client: httpx.AsyncClient) -> None:
    prompt = "a lighthouse at dusk, oil painting"
    response = await client.post(
        "/v1/images/generations",
        json={
            "model": "gpt-image-2",
            "prompt": prompt,
            "n": 3,
            "size": "1536x864",
            "quality": "high",
            "output_format": "jpeg",
            "output_compression": 60,
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["background"], body["output_format"], body["quality"], body["size"]) == (
        "opaque",
        "jpeg",
        "high",
        "1536x864",
    )
    assert len(body["data"]) == 3
    for item in body["data"]:
        assert set(item) == {"b64_json"}
        picture = decode(item["b64_json"])
        assert (picture.format, picture.size) == ("JPEG", (1536, 864))
    output = image_output_tokens("gpt-image-2", "1536x864", "high") * 3
    assert body["usage"] == {
        "input_tokens": text_tokens(prompt),
        "input_tokens_details": {"text_tokens": text_tokens(prompt), "image_tokens": 0},
        "output_tokens": output,
        "total_tokens": text_tokens(prompt) + output,
    }
    assert "output_tokens_details" not in body["usage"]


async def test_generation_resolves_auto_and_defaults(client: httpx.AsyncClient) -> None:
    body = (
        await client.post(
            "/v1/images/generations",
            json={"model": "gpt-image-2", "prompt": "x", "quality": "auto", "size": "auto", "background": "auto"},
        )
    ).json()
    assert (body["quality"], body["size"], body["background"], body["output_format"]) == (
        "medium",
        "1024x1024",
        "opaque",
        "png",
    )
    assert body["usage"]["output_tokens"] == 1756
    picture = decode(body["data"][0]["b64_json"])
    assert (picture.format, picture.size) == ("PNG", (1024, 1024))


async def test_legacy_model_uses_the_fixed_table_and_allows_transparency(client: httpx.AsyncClient) -> None:
    body = (
        await client.post(
            "/v1/images/generations",
            json={
                "model": "gpt-image-1.5",
                "prompt": "a logo",
                "size": "1024x1536",
                "quality": "low",
                "background": "transparent",
                "output_format": "webp",
            },
        )
    ).json()
    assert body["usage"]["output_tokens"] == 408
    assert body["background"] == "transparent"
    picture = decode(body["data"][0]["b64_json"])
    assert (picture.format, picture.size, picture.mode) == ("WEBP", (1024, 1536), "RGBA")


@pytest.mark.parametrize(
    ("fields", "status", "param", "code", "message"),
    [
        (
            {"size": "1000x1000"},
            400,
            "size",
            "invalid_value",
            "Invalid size '1000x1000'. Width and height must both be divisible by 16.",
        ),
        ({"model": "gpt-image-1", "size": "2048x2048"}, 400, "size", "invalid_value", None),
        ({"n": 11}, 400, "n", "integer_above_max_value", None),
        ({"n": 0}, 400, "n", "integer_below_min_value", None),
        (
            {"response_format": "b64_json"},
            400,
            "response_format",
            "unknown_parameter",
            "Unknown parameter: 'response_format'.",
        ),
        (
            {"background": "transparent"},
            400,
            "background",
            "invalid_value",
            "Transparent background is not supported for this model.",
        ),
        ({"quality": "ultra"}, 400, "quality", "invalid_value", None),
        ({"output_format": "gif"}, 400, "output_format", "invalid_value", None),
        ({"partial_images": 4}, 400, "partial_images", "integer_above_max_value", None),
        ({"prompt": None}, 400, "prompt", "missing_required_parameter", None),
    ],
)
async def test_generation_refusals(
    client: httpx.AsyncClient, fields: dict[str, Any], status: int, param: str, code: str, message: str | None
) -> None:
    response = await client.post("/v1/images/generations", json={"model": "gpt-image-2", "prompt": "p", **fields})
    error = error_of(response)
    assert (response.status_code, error["param"], error["code"]) == (status, param, code)
    if message is not None:
        assert error["message"] == message
    if param == "size":
        assert error["type"] == "image_generation_user_error"


async def test_generation_stream_events(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "a fox", "stream": True, "partial_images": 2, "quality": "low"},
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.content)
    assert [name for name, _ in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    payloads = [orjson.loads(data) for _, data in events]
    assert [payload["type"] for payload in payloads] == [name for name, _ in events]
    assert [payload["partial_image_index"] for payload in payloads[:2]] == [0, 1]
    completed = payloads[-1]
    assert completed["usage"]["output_tokens"] == 196 + 2 * 100
    assert completed["usage"]["input_tokens"] == text_tokens("a fox")
    assert decode(completed["b64_json"]).size == (1024, 1024)
    assert b"[DONE]" not in response.content


async def test_stream_with_n_images_sums_to_the_request_usage(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "two foxes", "stream": True, "n": 2, "quality": "low"},
    )
    completed = [
        orjson.loads(data) for name, data in sse_events(response.content) if name == "image_generation.completed"
    ]
    assert len(completed) == 2
    assert sum(event["usage"]["output_tokens"] for event in completed) == 2 * 196
    assert sum(event["usage"]["input_tokens"] for event in completed) == text_tokens("two foxes")


async def test_edit_counts_input_images_and_keeps_the_first_images_shape(client: httpx.AsyncClient) -> None:
    first, second = png_bytes(1200, 800), png_bytes(300, 300)
    mask = png_bytes(1200, 800, "RGBA")
    response = await client.post(
        "/v1/images/edits",
        data={"model": "gpt-image-2", "prompt": "make it blue"},
        files=[
            ("image[]", ("a.png", first, "image/png")),
            ("image[]", ("b.png", second, "image/png")),
            ("mask", ("m.png", mask, "image/png")),
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["size"] == "1200x800"
    assert decode(body["data"][0]["b64_json"]).size == (1200, 800)
    image_tokens = image_input_tokens(1200, 800) + image_input_tokens(300, 300)
    assert body["usage"]["input_tokens_details"] == {
        "text_tokens": text_tokens("make it blue"),
        "image_tokens": image_tokens,
    }
    assert body["usage"]["output_tokens"] == image_output_tokens("gpt-image-2", "1200x800", "medium")


async def test_edit_with_a_legacy_model_picks_the_nearest_standard_size(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/images/edits",
        data={"model": "gpt-image-1", "prompt": "p", "quality": "high"},
        files={"image": ("a.png", png_bytes(600, 900), "image/png")},
    )
    body = response.json()
    assert (body["size"], body["usage"]["output_tokens"]) == ("1024x1536", 6240)


async def test_edit_refuses_bad_masks_and_files(client: httpx.AsyncClient) -> None:
    image = ("image", ("a.png", png_bytes(64, 64), "image/png"))
    wrong_size = await client.post(
        "/v1/images/edits",
        data={"prompt": "p"},
        files=[image, ("mask", ("m.png", png_bytes(32, 32, "RGBA"), "image/png"))],
    )
    assert error_of(wrong_size)["code"] == "invalid_mask_image_format"
    assert error_of(wrong_size)["message"] == "Invalid mask image format - mask size does not match image size"
    not_an_image = await client.post(
        "/v1/images/edits", data={"prompt": "p"}, files={"image": ("a.png", b"not an image", "image/png")}
    )
    assert (not_an_image.status_code, error_of(not_an_image)["param"]) == (400, "image")
    no_image = await client.post("/v1/images/edits", data={"prompt": "p"}, files={"mask": ("m.png", b"x")})
    assert error_of(no_image)["code"] == "missing_required_parameter"
    fidelity = await client.post(
        "/v1/images/edits", data={"prompt": "p", "model": "gpt-image-2", "input_fidelity": "high"}, files=[image]
    )
    assert error_of(fidelity)["code"] == "invalid_input_fidelity_model"


async def test_edit_stream_uses_image_edit_events(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/images/edits",
        data={"prompt": "p", "stream": "true", "partial_images": "1"},
        files={"image": ("a.png", png_bytes(1024, 1024), "image/png")},
    )
    assert [name for name, _ in sse_events(response.content)] == ["image_edit.partial_image", "image_edit.completed"]


async def test_json_edit_with_data_urls(client: httpx.AsyncClient) -> None:
    url = "data:image/png;base64," + base64.b64encode(png_bytes(1024, 1536)).decode()
    body = (
        await client.post(
            "/v1/images/edits", json={"model": "gpt-image-2", "prompt": "p", "images": [{"image_url": url}]}
        )
    ).json()
    assert body["size"] == "1024x1536"
    assert body["usage"]["input_tokens_details"]["image_tokens"] == image_input_tokens(1024, 1536)
