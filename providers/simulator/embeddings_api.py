"""`POST /v1/embeddings`: deterministic unit vectors derived from the input text."""

from __future__ import annotations

import base64
import hashlib
import math
import sys
from array import array
from typing import Any, Final

from providers.image_tokens import text_tokens

from .api_call import ApiCall
from .errors import SimError, invalid_value, missing_parameter
from .images import ImageCache
from .json_bytes import dumps
from .replies import BodyReply, Reply

DEFAULT_DIMENSIONS: Final = 1536
MAX_DIMENSIONS: Final = 3072
ENCODINGS: Final = ("float", "base64")


async def create_embeddings(call: ApiCall, images: ImageCache) -> Reply:
    model = call.model
    if not model:
        raise missing_parameter("model")
    inputs = _inputs(call.fields.get("input"))
    dimensions = call.fields.get("dimensions") or DEFAULT_DIMENSIONS
    if not isinstance(dimensions, int) or isinstance(dimensions, bool) or not 1 <= dimensions <= MAX_DIMENSIONS:
        raise SimError(
            400,
            f"Invalid 'dimensions': expected an integer between 1 and {MAX_DIMENSIONS}.",
            param="dimensions",
            code="invalid_value",
        )
    encoding = call.fields.get("encoding_format") or "float"
    if encoding not in ENCODINGS:
        raise invalid_value("encoding_format", encoding, ENCODINGS)
    data = [
        {"object": "embedding", "index": index, "embedding": _encode(embedding_vector(text, dimensions), encoding)}
        for index, text in enumerate(inputs)
    ]
    tokens = sum(text_tokens(text) for text in inputs)
    body = {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    return BodyReply(200, dumps(body))


def embedding_vector(text: str, dimensions: int) -> array[float]:
    """A unit float32 vector that depends only on `text` (shorter ones are prefixes, renormalised)."""
    digest = hashlib.shake_256(text.encode()).digest(2 * dimensions)
    components = array("h", digest)
    if sys.byteorder != "little":
        components.byteswap()  # the same vector on every platform
    norm = math.sqrt(sum(component * component for component in components)) or 1.0
    return array("f", [component / norm for component in components])


def _encode(vector: array[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector.tolist()
    if sys.byteorder != "little":
        vector = array("f", vector)
        vector.byteswap()
    # OpenAI's base64 embeddings are little-endian float32.
    return base64.b64encode(vector.tobytes()).decode()


def _inputs(value: Any) -> list[str]:
    """Input as a list of strings; token-id arrays are hashed by their text form."""
    if value is None or value == "" or value == []:
        raise missing_parameter("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, int) for item in value):
        return [" ".join(map(str, value))]
    if isinstance(value, list) and all(isinstance(item, (str, list)) for item in value):
        return [item if isinstance(item, str) else " ".join(map(str, item)) for item in value]
    raise SimError(
        400, "Invalid type for 'input': expected a string or an array of strings.", param="input", code="invalid_type"
    )
