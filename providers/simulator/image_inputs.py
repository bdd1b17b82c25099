"""Input images (edit uploads, Responses `input_image` data URLs): their real
dimensions, read from the bytes with Pillow, and the checks OpenAI applies to them."""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Final

from PIL import Image, UnidentifiedImageError

from .errors import SimError

ACCEPTED_FORMATS: Final = frozenset({"PNG", "JPEG", "WEBP"})


@dataclass(frozen=True, slots=True)
class InputImage:
    format: str
    width: int
    height: int


def read_image(data: bytes, *, param: str, label: str) -> InputImage:
    """Dimensions and format of an uploaded image; 400 if it is not PNG/JPEG/WebP.

    Pillow only parses the header here, so this stays cheap for large uploads.
    """
    try:
        with Image.open(io.BytesIO(data)) as picture:
            found = InputImage(picture.format or "", picture.width, picture.height)
    except (UnidentifiedImageError, OSError, ValueError):
        found = None
    if found is None or found.format not in ACCEPTED_FORMATS:
        raise SimError(
            400,
            f"Invalid image file or mode for {label}, please check your image file. "
            "Supported formats are 'png', 'jpeg', and 'webp'.",
            type="image_generation_user_error",
            param=param,
            code="invalid_image_format",
        )
    return found


def check_mask(mask: bytes, first_image: InputImage) -> None:
    """OpenAI's mask rule: a PNG with the same dimensions as the first image."""
    try:
        found = read_image(mask, param="mask", label="mask")
    except SimError:
        found = None
    if found is None or found.format != "PNG":
        raise _mask_error("mask must be a PNG image")
    if (found.width, found.height) != (first_image.width, first_image.height):
        raise _mask_error("mask size does not match image size")


def decode_data_url(url: str, *, param: str) -> bytes | None:
    """The bytes of a base64 `data:` URL; None for other URLs (which the simulator cannot fetch)."""
    if not url.startswith("data:"):
        return None
    header, comma, payload = url.partition(",")
    if not comma or not header.endswith(";base64"):
        raise SimError(400, f"Invalid '{param}': expected a base64 data URL.", param=param, code="invalid_value")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise SimError(
            400, f"Invalid '{param}': the data URL is not valid base64.", param=param, code="invalid_value"
        ) from None


def _mask_error(reason: str) -> SimError:
    return SimError(
        400,
        f"Invalid mask image format - {reason}",
        type="image_generation_user_error",
        param="mask",
        code="invalid_mask_image_format",
    )
