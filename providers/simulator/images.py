"""Real image bytes of any requested size and format, encoded once and cached.

Encoding a 1024x1024 PNG costs milliseconds and a 3840x2160 one far more, so an
answer only ever reuses cached bytes; a miss renders in a worker thread so the
event loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final, Literal

from PIL import Image, ImageDraw

OutputFormat = Literal["png", "jpeg", "webp"]

_PIL_FORMAT: Final = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
_BACKGROUND_BLUE: Final = 150


@dataclass(frozen=True, slots=True)
class ImageSpec:
    """Everything the bytes depend on; the cache key."""

    output_format: OutputFormat
    width: int
    height: int
    compression_bucket: int = 100
    transparent: bool = False

    @classmethod
    def of(cls, output_format: OutputFormat, width: int, height: int, compression: int, transparent: bool) -> ImageSpec:
        # PNG is lossless; for jpeg/webp, compression rounded to tens keeps the cache small.
        bucket = 100 if output_format == "png" else min(100, max(0, round(compression / 10) * 10))
        return cls(output_format, width, height, bucket, transparent)


@dataclass(frozen=True, slots=True)
class EncodedImage:
    data: bytes
    b64: bytes


class ImageCache:
    """A bounded LRU of encoded images, limited by entry count and by bytes held."""

    def __init__(self, max_entries: int = 64, max_bytes: int = 256 * 1024 * 1024) -> None:
        self._entries: OrderedDict[ImageSpec, EncodedImage] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._held_bytes = 0

    async def get(self, spec: ImageSpec) -> EncodedImage:
        cached = self._entries.get(spec)
        if cached is not None:
            self._entries.move_to_end(spec)
            return cached
        # Two concurrent misses may both render; harmless, and simpler than waiters.
        data = await asyncio.to_thread(render, spec)
        encoded = EncodedImage(data, base64.b64encode(data))
        self._store(spec, encoded)
        return encoded

    def __len__(self) -> int:
        return len(self._entries)

    def _store(self, spec: ImageSpec, encoded: EncodedImage) -> None:
        previous = self._entries.pop(spec, None)
        if previous is not None:
            self._held_bytes -= _size(previous)
        self._entries[spec] = encoded
        self._held_bytes += _size(encoded)
        while len(self._entries) > 1 and (len(self._entries) > self._max_entries or self._held_bytes > self._max_bytes):
            _, evicted = self._entries.popitem(last=False)
            self._held_bytes -= _size(evicted)


def render(spec: ImageSpec) -> bytes:
    """A gradient with a few shapes: cheap to draw, real to decode."""
    size = (spec.width, spec.height)
    ramp = Image.linear_gradient("L")
    red = ramp.transpose(Image.Transpose.ROTATE_90).resize(size)
    green = ramp.resize(size)
    blue = Image.new("L", size, _BACKGROUND_BLUE)
    picture = Image.merge("RGB", (red, green, blue))
    shapes = _draw_shapes(picture, spec.width, spec.height)
    if spec.transparent:
        # Only the shapes stay opaque, so the transparent background is visible.
        picture.putalpha(shapes)
    buffer = io.BytesIO()
    if spec.output_format == "png":
        picture.save(buffer, "PNG", compress_level=1)
    else:
        picture.save(buffer, _PIL_FORMAT[spec.output_format], quality=spec.compression_bucket)
    return buffer.getvalue()


def _draw_shapes(picture: Image.Image, width: int, height: int) -> Image.Image:
    """Draw the shapes on `picture`; return their coverage as a mask."""
    mask = Image.new("L", (width, height), 0)
    short = min(width, height)
    ellipse = (width // 2 - short // 4, height // 2 - short // 4, width // 2 + short // 4, height // 2 + short // 4)
    square = (short // 16, short // 16, short // 16 + short // 5, short // 16 + short // 5)
    triangle = [
        (width - short // 16, height - short // 16),
        (width - short // 3, height - short // 16),
        (width - short // 16, height - short // 3),
    ]
    for canvas, ink in ((ImageDraw.Draw(picture), None), (ImageDraw.Draw(mask), 255)):
        canvas.ellipse(ellipse, fill=ink or (250, 245, 235))
        canvas.rectangle(square, fill=ink or (30, 30, 60))
        canvas.polygon(triangle, fill=ink or (220, 60, 40))
    return mask


def _size(encoded: EncodedImage) -> int:
    return len(encoded.data) + len(encoded.b64)
