"""JSON encoding for answers that carry megabytes of base64 image data."""

from __future__ import annotations

from typing import Any, Final

import orjson

# A stand-in string for the image in a JSON document; `dumps_with_image` swaps in
# the cached base64 bytes afterwards, so a multi-megabyte image is copied once
# instead of being scanned for escapes by the JSON encoder on every request.
IMAGE_PLACEHOLDER: Final = "__simulator_image_b64__"
_QUOTED_PLACEHOLDER: Final = b'"' + IMAGE_PLACEHOLDER.encode() + b'"'


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def dumps_with_image(value: Any, image_b64: bytes) -> bytes:
    """`dumps`, with every `IMAGE_PLACEHOLDER` string replaced by `image_b64`.

    Base64 is plain ASCII without quotes or backslashes, so it needs no escaping.
    """
    return orjson.dumps(value).replace(_QUOTED_PLACEHOLDER, b'"' + image_b64 + b'"')


def loads(body: bytes) -> Any:
    return orjson.loads(body)
