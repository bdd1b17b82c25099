"""The image an answer carried, decoded: proof that the bytes are a real image of
the size and format the request asked for."""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

_FORMATS = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}


class NotAnImage(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Picture:
    data: bytes
    format: str  # png | jpeg | webp, read from the bytes, not from what the answer claims
    width: int
    height: int

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def mime_type(self) -> str:
        return f"image/{self.format}"

    def describe(self) -> str:
        return f"{self.size} {self.format}, {len(self.data):,} bytes"


def decode_picture(b64: str | None) -> Picture:
    if not b64:
        raise NotAnImage("the answer carries no image (no b64_json / result)")
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise NotAnImage("the image is not valid base64") from None
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # decode every pixel: a truncated file fails here, not at a user's
            found = image.format or ""
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise NotAnImage(f"the image does not decode ({exc})") from None
    if found not in _FORMATS:
        raise NotAnImage(f"the image is {found or 'of an unknown format'}, not png, jpeg or webp")
    return Picture(data, _FORMATS[found], width, height)
