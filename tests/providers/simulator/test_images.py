"""The simulator's image bytes (providers/simulator/images.py): real images in the
format, size and background asked for, from a bounded cache that one slow render
does not block."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest

from providers.simulator.app import Simulator
from providers.simulator.images import ImageCache, ImageSpec, OutputFormat

from .helpers import AUTH, decode


@pytest.mark.parametrize(("output_format", "pil_format"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
async def test_cached_images_decode_in_the_requested_format_and_size(
    output_format: OutputFormat, pil_format: str
) -> None:
    cache = ImageCache()
    spec = ImageSpec.of(output_format, 1536, 864, 80, False)
    encoded = await cache.get(spec)
    assert await cache.get(ImageSpec.of(output_format, 1536, 864, 78, False)) is encoded  # same bucket
    picture = decode(encoded.b64.decode())
    assert (picture.format, picture.size) == (pil_format, (1536, 864))
    assert base64.b64decode(encoded.b64) == encoded.data


async def test_jpeg_compression_changes_the_bytes() -> None:
    cache = ImageCache()
    small = await cache.get(ImageSpec.of("jpeg", 512, 512, 10, False))
    large = await cache.get(ImageSpec.of("jpeg", 512, 512, 100, False))
    assert len(small.data) < len(large.data)


async def test_transparent_png_has_a_transparent_background() -> None:
    encoded = await ImageCache().get(ImageSpec.of("png", 1024, 1024, 100, True))
    picture = decode(encoded.b64.decode())
    assert picture.mode == "RGBA"
    alpha = picture.getchannel("A")
    assert alpha.getpixel((400, 5)) == 0
    assert alpha.getpixel((512, 512)) == 255


async def test_image_cache_is_bounded_by_entries_and_bytes() -> None:
    cache = ImageCache(max_entries=2)
    specs = [ImageSpec.of("jpeg", 64 * size, 64, 50, False) for size in (1, 2, 3)]
    first = await cache.get(specs[0])
    await cache.get(specs[1])
    await cache.get(specs[2])
    assert len(cache) == 2
    assert await cache.get(specs[0]) is not first  # evicted, rendered again
    tiny = ImageCache(max_bytes=1)
    await tiny.get(specs[0])
    await tiny.get(specs[1])
    assert len(tiny) == 1  # the newest is always kept


async def test_concurrent_cache_misses_do_not_block_each_other(app: Simulator) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim", headers=AUTH) as http:
        sizes = ["1024x1024", "1536x1024", "1024x1536"]
        responses = await asyncio.gather(
            *(
                http.post("/v1/images/generations", json={"model": "gpt-image-2", "prompt": "p", "size": size})
                for size in sizes
            )
        )
    assert [response.json()["size"] for response in responses] == sizes
