"""Image generation and edits through the proxy, driven with the official SDK."""

from __future__ import annotations

import base64
import io
import struct
import time
import zlib

import openai
import pytest
from PIL import Image

from .harness import OPENAI_UPSTREAM_KEY, marker, marker_id, upstream_requests


def decoded(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), (200, 30, 30, 0) if mode == "RGBA" else (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def test_generate_returns_a_real_image_of_the_requested_format_and_size(proxy):
    raw = proxy.client().images.with_raw_response.generate(
        model="gpt-image-2", prompt="a lighthouse at dawn", size="1536x1024", quality="low", output_format="webp"
    )
    result = raw.parse()
    image = decoded(result.data[0].b64_json)
    assert (image.format, image.size) == ("WEBP", (1536, 1024))
    assert result.usage.output_tokens == 158  # gpt-image-2, 1536x1024, low
    assert raw.headers["x-tollgate-route"] == "gpt-image-2"
    assert raw.headers["x-tollgate-provider"] == "openai"
    assert raw.headers["x-tollgate-billing-owner"] == "openai/org-test"
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["x-tollgate-upstream-request-id"].startswith("req_sim_")


def test_generate_passes_n_and_defaults_through(proxy):
    result = proxy.client().images.generate(model="gpt-image-2", prompt="two cats", n=2, quality="low")
    assert [decoded(item.b64_json).size for item in result.data] == [(1024, 1024), (1024, 1024)]
    assert decoded(result.data[0].b64_json).format == "PNG"


def test_edit_sends_two_images_and_a_mask_byte_for_byte(proxy, simulator):
    first, second, mask = png(1024, 1536), png(512, 512), png(1024, 1536, "RGBA")
    prompt = f"make the sky purple {marker()}"
    result = proxy.client().images.edit(
        model="gpt-image-2",
        image=[("first.png", first, "image/png"), ("second.png", second, "image/png")],
        mask=("mask.png", mask, "image/png"),
        prompt=prompt,
        quality="low",
    )
    image = decoded(result.data[0].b64_json)
    assert image.size == (1024, 1536)  # size auto keeps the first input's size
    assert result.usage.input_tokens_details.image_tokens > 0
    (seen,) = upstream_requests(simulator, containing=marker_id(prompt))
    files = seen["multipart"]["files"]
    assert [(f["field"], f["filename"], f["size"]) for f in files] == [
        ("image[]", "first.png", len(first)),
        ("image[]", "second.png", len(second)),
        ("mask", "mask.png", len(mask)),
    ]
    assert seen["headers"]["authorization"] == f"Bearer {OPENAI_UPSTREAM_KEY}"


def claims(width: int, height: int) -> bytes:
    """A PNG whose header says `width`x`height`, written by hand: nothing that size exists."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(4096))) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("image", "mask", "param", "said"),
    [
        (png(64, 64)[:-30], None, "image", "is truncated"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, None, "image", "its header cannot be read"),
        (claims(100_000, 100_000), None, "image", "claims 100000x100000 pixels"),
        (png(64, 64), png(32, 32, "RGBA"), "mask", "The `mask` is 32x32 but the first image is 64x64"),
    ],
    ids=["truncated", "garbage-after-signature", "claims-100000x100000", "mask-of-another-size"],
)
def test_an_edit_input_that_is_not_a_whole_image_within_limits_never_goes_upstream(
    proxy, simulator, image, mask, param, said
):
    prompt = f"make the sky purple {marker()}"
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.client().images.edit(
            model="gpt-image-2",
            image=("in.png", image, "image/png"),
            prompt=prompt,
            **({"mask": ("mask.png", mask, "image/png")} if mask else {}),
        )
    assert caught.value.param == param and said in caught.value.message
    assert caught.value.code == "policy_refused"
    assert caught.value.response.headers["x-tollgate-attempts"] == "0"
    assert upstream_requests(simulator, containing=marker_id(prompt)) == []


def test_image_stream_events_are_relayed_as_they_arrive(proxy):
    stream = proxy.client().images.generate(
        model="gpt-image-2", prompt=f"a fox {marker(interval=0.4)}", quality="low", stream=True, partial_images=2
    )
    arrivals = []
    for event in stream:
        arrivals.append((event.type, time.monotonic()))
    assert [kind for kind, _ in arrivals] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    # Buffering would deliver all three together; relayed events keep the upstream's 0.4 s spacing.
    assert arrivals[-1][1] - arrivals[0][1] > 0.6
