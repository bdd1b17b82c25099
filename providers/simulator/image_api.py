"""`POST /v1/images/generations` and `POST /v1/images/edits`, plain and streamed."""

from __future__ import annotations

import time
from typing import Any, Final

from providers.image_tokens import image_input_tokens, text_tokens

from .api_call import ApiCall
from .billing import Generation
from .errors import SimError, missing_parameter
from .image_inputs import InputImage, check_mask, decode_data_url, read_image
from .image_settings import DEFAULT_MODEL, PARTIAL_IMAGE_TOKENS, ImageSettings, resolve_image_settings
from .images import EncodedImage, ImageCache
from .json_bytes import IMAGE_PLACEHOLDER, dumps_with_image
from .replies import BodyReply, Reply, StreamReply
from .sse import named_event
from .usage import images_usage

MAX_PROMPT_CHARS: Final = 32_000
MAX_INPUT_IMAGES: Final = 16


async def create_image(call: ApiCall, images: ImageCache) -> Reply:
    prompt = _prompt(call.fields)
    settings = resolve_image_settings(call.fields, model=call.model or DEFAULT_MODEL)
    return await _answer("image_generation", call, settings, images, text_tokens(prompt), image_tokens=0)


async def edit_image(call: ApiCall, images: ImageCache) -> Reply:
    prompt = _prompt(call.fields)
    sources, mask = _edit_inputs(call)
    if not sources:
        raise missing_parameter("image")
    if len(sources) > MAX_INPUT_IMAGES:
        raise SimError(
            400,
            f"Invalid 'image': array too long. Expected an array with maximum length {MAX_INPUT_IMAGES}, "
            f"but got an array with length {len(sources)} instead.",
            param="image",
            code="array_above_max_length",
        )
    inputs = [read_image(data, param="image", label=f"image {index + 1}") for index, data in enumerate(sources)]
    if mask is not None:
        check_mask(mask, inputs[0])
    first = inputs[0]
    settings = resolve_image_settings(
        call.fields, model=call.model or DEFAULT_MODEL, source_size=(first.width, first.height)
    )
    return await _answer("image_edit", call, settings, images, text_tokens(prompt), image_tokens=_input_tokens(inputs))


def _prompt(fields: dict[str, Any]) -> str:
    prompt = fields.get("prompt")
    if prompt is None or prompt == "":
        raise missing_parameter("prompt")
    if not isinstance(prompt, str):
        raise SimError(400, "Invalid type for 'prompt': expected a string.", param="prompt", code="invalid_type")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise SimError(
            400,
            f"Invalid 'prompt': string too long. Expected a string with maximum length {MAX_PROMPT_CHARS}, "
            f"but got a string with length {len(prompt)} instead.",
            param="prompt",
            code="string_above_max_length",
        )
    return prompt


def _edit_inputs(call: ApiCall) -> tuple[list[bytes], bytes | None]:
    """Input images and mask, from multipart uploads or from the JSON variant's data URLs."""
    if call.uploads:
        sources = [
            upload.data for upload in call.uploads if upload.field == "image" or upload.field.startswith("image[")
        ]
        masks = call.uploads_named("mask")
        return sources, masks[0].data if masks else None
    references = call.fields.get("images") or []
    if not isinstance(references, list):
        raise SimError(400, "Invalid type for 'images': expected an array.", param="images", code="invalid_type")
    sources = [_referenced_image(reference, "images") for reference in references]
    mask = call.fields.get("mask")
    return sources, None if mask is None else _referenced_image(mask, "mask")


def _referenced_image(reference: object, param: str) -> bytes:
    url = reference.get("image_url") if isinstance(reference, dict) else None
    data = decode_data_url(url, param=param) if isinstance(url, str) else None
    if data is None:
        raise SimError(
            400,
            f"Invalid '{param}': the simulator accepts only base64 data URLs here.",
            param=param,
            code="invalid_value",
        )
    return data


def _input_tokens(inputs: list[InputImage]) -> int:
    return sum(image_input_tokens(image.width, image.height) for image in inputs)


async def _answer(
    kind: str, call: ApiCall, settings: ImageSettings, images: ImageCache, text: int, image_tokens: int
) -> Reply:
    encoded = await images.get(settings.spec)
    per_image = settings.output_tokens_per_image()
    created = int(time.time())
    partials = settings.partial_images if settings.stream else 0
    output_tokens = settings.n * (per_image + PARTIAL_IMAGE_TOKENS * partials)
    billed = Generation(
        call.model or settings.model,
        kind.replace("_", "."),  # image.generation, image.edit: the Usage API's `source`
        settings.size,
        settings.n,
        text,
        image_tokens,
        output_tokens,
    )
    if settings.stream:
        return StreamReply(_events(kind, settings, encoded, created, text, image_tokens, per_image), generation=billed)
    body = {
        "created": created,
        "background": settings.background,
        "data": [{"b64_json": IMAGE_PLACEHOLDER}] * settings.n,
        "output_format": settings.output_format,
        "quality": settings.quality,
        "size": settings.size,
        "usage": images_usage(text, image_tokens, per_image * settings.n),
    }
    return BodyReply(200, dumps_with_image(body, encoded.b64), generation=billed)


def _events(
    kind: str,
    settings: ImageSettings,
    encoded: EncodedImage,
    created: int,
    text: int,
    image_tokens: int,
    per_image: int,
) -> list[bytes]:
    """Partial images, then a completed event, for each of the `n` images.

    Each completed event carries the usage of its own image (the input tokens on
    the first), so the completed events of a stream add up to the request's usage.
    """
    echo = {
        "background": settings.background,
        "created_at": created,
        "output_format": settings.output_format,
        "quality": settings.quality,
        "size": settings.size,
    }
    partial_type, completed_type = f"{kind}.partial_image", f"{kind}.completed"
    output_tokens = per_image + PARTIAL_IMAGE_TOKENS * settings.partial_images
    frames: list[bytes] = []
    for image_index in range(settings.n):
        for partial_index in range(settings.partial_images):
            partial = {
                "type": partial_type,
                "b64_json": IMAGE_PLACEHOLDER,
                **echo,
                "partial_image_index": partial_index,
            }
            frames.append(named_event(partial_type, dumps_with_image(partial, encoded.b64)))
        first = image_index == 0
        usage = images_usage(text if first else 0, image_tokens if first else 0, output_tokens)
        completed = {"type": completed_type, "b64_json": IMAGE_PLACEHOLDER, **echo, "usage": usage}
        frames.append(named_event(completed_type, dumps_with_image(completed, encoded.b64)))
    return frames
