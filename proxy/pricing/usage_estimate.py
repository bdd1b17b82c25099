"""The pre-flight estimate: what a request will consume, read from the request
alone, before any upstream is called. Where the request leaves a choice to the
upstream (`quality: auto`, no output limit), the estimate takes the dear side,
since budgets are reserved from it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from policies.image_files import image_size
from providers.image_tokens import (
    MAX_IMAGES,
    MAX_PARTIAL_IMAGES,
    image_input_tokens,
    image_output_tokens,
    is_gpt_image_model,
    text_tokens,
)
from providers.types import Call, ImageSettings, MultipartBody, Surface

from .usage import Metered, Usage

AUTO_QUALITY_ESTIMATE = "high"  # the dearest of what `auto` may resolve to
AUTO_SIZE_ESTIMATE = "1024x1024"  # the dearest of the standard sizes
PARTIAL_IMAGE_TOKENS = 100  # each partial image adds 100 image output tokens (OpenAI's guide)
_DEFAULT_INPUT_SIZE = (1024, 1024)  # an input we cannot measure (a file id, a URL)


def estimate_usage(call: Call, *, model: str, image_model: str | None, output_tokens: int) -> Usage:
    """`model`: the upstream's name for the route's model; `output_tokens`: assumed
    when the request sets no maximum."""
    fields = call.body.fields
    if call.surface.makes_images:
        assert call.image is not None
        return (_image(call, model, text_tokens(fields.get("prompt") or "")),)
    if call.surface is Surface.EMBEDDINGS:
        return (Metered(model, text_input=sum(text_tokens(text) for text in _texts(fields.get("input")))),)
    if call.surface is Surface.RESPONSES:
        texts = [*_texts(fields.get("input")), *_texts(fields.get("instructions"))]
    else:
        texts = list(_texts(fields.get("messages")))
    prompt_tokens = sum(text_tokens(text) for text in texts)
    output = call.max_output_tokens or output_tokens
    main = Metered(model, text_input=prompt_tokens, text_output=output)
    if call.surface is Surface.RESPONSES and call.image is not None:
        tool_model = call.image.model or image_model or "gpt-image-2"
        return (main, _image(call, tool_model, prompt_tokens))
    return (main,)


def _image(call: Call, model: str, prompt_tokens: int) -> Metered:
    settings = call.image
    assert settings is not None
    quality = settings.quality if settings.quality in ("low", "medium", "high") else AUTO_QUALITY_ESTIMATE
    size = _output_size(call, settings, model)
    per_image = output_tokens_per_image(model, size, quality)
    # No upstream makes more than this: counts past it (refused later, by policy or upstream)
    # would estimate sums past what the ledger's integers hold.
    images = min(max(settings.n, 1), MAX_IMAGES)
    partials = min(max(settings.partial_images, 0), MAX_PARTIAL_IMAGES)
    return Metered(
        model,
        text_input=prompt_tokens,
        image_input=sum(image_input_tokens(*dims) for dims in _input_sizes(call, settings)),
        image_output=images * (per_image + partials * PARTIAL_IMAGE_TOKENS),
        images=images,
        size=size,
        quality=quality,
    )


def output_tokens_per_image(model: str, size: str, quality: str) -> int:
    """0 where OpenAI's arithmetic does not apply (another vendor's model, a size the
    model cannot make): such a request is priced per image or refused upstream."""
    if not is_gpt_image_model(model):
        return 0
    try:
        return image_output_tokens(model, size, quality)
    except ValueError:
        return 0


def _output_size(call: Call, settings: ImageSettings, model: str) -> str:
    if settings.size and settings.size != "auto":
        return settings.size
    if call.surface is Surface.IMAGES_EDIT and model.startswith("gpt-image-2"):
        first = next(_input_sizes(call, settings), None)
        if first and first[0] % 16 == 0 and first[1] % 16 == 0:
            return f"{first[0]}x{first[1]}"  # an edit at size auto keeps its input's size
    return AUTO_SIZE_ESTIMATE


def _input_sizes(call: Call, settings: ImageSettings) -> Iterator[tuple[int, int]]:
    if isinstance(call.body, MultipartBody):
        for file in settings.inputs:
            yield _dimensions(call.body.file_bytes(file))
    else:
        for _ in range(settings.input_images):
            yield _DEFAULT_INPUT_SIZE


def _dimensions(data: bytes) -> tuple[int, int]:
    """Read from the image's header only; the pixels are never decoded. Whether the
    image is whole and within the limits is the image_parameters policy's to say."""
    return image_size(data) or _DEFAULT_INPUT_SIZE


def _texts(value: Any) -> Iterator[str]:
    """Every piece of text in a prompt, a message list or a Responses input."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict):
        for key in ("content", "text", "input"):
            yield from _texts(value.get(key))
