"""decode_picture: an answer's image is real, of a known format and size, or the
reason it is not."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from proxy.launch.pictures import NotAnImage, decode_picture


def encoded(fmt: str, size: tuple[int, int] = (64, 32)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize(("fmt", "name"), [("PNG", "png"), ("JPEG", "jpeg"), ("WEBP", "webp")])
def test_an_image_is_read_from_its_bytes(fmt, name):
    picture = decode_picture(encoded(fmt))
    assert (picture.format, picture.size, picture.mime_type) == (name, "64x32", f"image/{name}")
    assert picture.describe().startswith(f"64x32 {name}, ")


def test_a_truncated_image_does_not_decode():
    data = base64.b64decode(encoded("PNG", (256, 256)))
    with pytest.raises(NotAnImage, match="does not decode"):
        decode_picture(base64.b64encode(data[: len(data) // 2]).decode())


@pytest.mark.parametrize(
    ("b64", "reason"),
    [(None, "carries no image"), ("", "carries no image"), ("not base64!", "not valid base64")],
)
def test_no_image_says_why(b64, reason):
    with pytest.raises(NotAnImage, match=reason):
        decode_picture(b64)


def test_a_format_the_api_does_not_return_is_refused():
    with pytest.raises(NotAnImage, match="GIF, not png, jpeg or webp"):
        decode_picture(encoded("GIF"))
