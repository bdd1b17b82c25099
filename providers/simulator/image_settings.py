"""The image settings of a request (Images API body or form, or a Responses
`image_generation` tool), validated and resolved the way OpenAI resolves them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, cast

from providers.image_tokens import (
    MAX_EDGE,
    MAX_PIXELS,
    image_output_tokens,
    is_gpt_image_2_family,
    is_gpt_image_model,
    parse_size,
    size_error,
)

from .errors import SimError, invalid_value
from .images import ImageSpec, OutputFormat

DEFAULT_MODEL: Final = "gpt-image-2"
QUALITIES: Final = ("low", "medium", "high", "auto")
OUTPUT_FORMATS: Final = ("png", "jpeg", "webp")
BACKGROUNDS: Final = ("transparent", "opaque", "auto")
# OpenAI's usage shows `quality: auto` resolving to medium; `size: auto` to a square.
AUTO_QUALITY: Final = "medium"
AUTO_SIZE: Final = (1024, 1024)
# Each streamed partial image is billed as this many extra image output tokens.
PARTIAL_IMAGE_TOKENS: Final = 100

_STANDARD_SHAPES: Final = ((1024, 1024), (1536, 1024), (1024, 1536))


@dataclass(frozen=True, slots=True)
class ImageSettings:
    model: str  # the model whose rules applied (see `rules_model`)
    width: int
    height: int
    quality: str  # resolved: low | medium | high
    output_format: OutputFormat
    compression: int
    background: str  # resolved: opaque | transparent
    n: int
    stream: bool
    partial_images: int

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def spec(self) -> ImageSpec:
        return ImageSpec.of(
            self.output_format, self.width, self.height, self.compression, self.background == "transparent"
        )

    def output_tokens_per_image(self) -> int:
        return image_output_tokens(self.model, self.size, self.quality)


def rules_model(model: str) -> str:
    """Model names the token table does not know (an Azure deployment, a provider's
    alias) follow gpt-image-2's rules, the current default image model."""
    return model if is_gpt_image_model(model) else DEFAULT_MODEL


def resolve_image_settings(
    fields: Mapping[str, Any],
    *,
    model: str,
    size_param: str = "size",
    source_size: tuple[int, int] | None = None,
) -> ImageSettings:
    """Validate and resolve `fields` (JSON values, or strings from a form).

    `source_size` is the first input image of an edit: `size: auto` keeps its shape.
    """
    model = rules_model(model)
    if _given(fields, "response_format"):
        raise SimError(400, "Unknown parameter: 'response_format'.", param="response_format", code="unknown_parameter")
    if _given(fields, "input_fidelity") and is_gpt_image_2_family(model):
        raise SimError(
            400,
            f"The model '{model}' does not support the 'input_fidelity' parameter.",
            type="image_generation_user_error",
            param="input_fidelity",
            code="invalid_input_fidelity_model",
        )
    quality = _choice(fields, "quality", QUALITIES, "auto")
    output_format = cast(OutputFormat, _choice(fields, "output_format", OUTPUT_FORMATS, "png"))
    background = _choice(fields, "background", BACKGROUNDS, "auto")
    if background == "transparent":
        _check_transparency(model, output_format)
    size = fields.get("size") or "auto"
    if not isinstance(size, str):
        raise SimError(
            400, f"Invalid type for '{size_param}': expected a string.", param=size_param, code="invalid_type"
        )
    problem = size_error(model, size)
    if problem is not None:
        raise SimError(400, problem, type="image_generation_user_error", param=size_param, code="invalid_value")
    width, height = parse_size(size) or _auto_size(model, source_size)
    return ImageSettings(
        model=model,
        width=width,
        height=height,
        quality=AUTO_QUALITY if quality == "auto" else quality,
        output_format=output_format,
        compression=_integer(fields, "output_compression", 100, 0, 100),
        background="opaque" if background == "auto" else background,
        n=_integer(fields, "n", 1, 1, 10),
        stream=_boolean(fields, "stream"),
        partial_images=_integer(fields, "partial_images", 0, 0, 3),
    )


def _check_transparency(model: str, output_format: str) -> None:
    if is_gpt_image_2_family(model):
        raise SimError(
            400,
            "Transparent background is not supported for this model.",
            type="image_generation_user_error",
            param="background",
            code="invalid_value",
        )
    if output_format == "jpeg":
        raise SimError(
            400,
            "Transparent background requires output_format 'png' or 'webp'.",
            type="image_generation_user_error",
            param="background",
            code="invalid_value",
        )


def _auto_size(model: str, source: tuple[int, int] | None) -> tuple[int, int]:
    if source is None:
        return AUTO_SIZE
    width, height = source
    if not is_gpt_image_2_family(model):
        # Older models only render the three standard shapes; take the closest.
        return min(_STANDARD_SHAPES, key=lambda shape: abs(math.log((width / height) / (shape[0] / shape[1]))))
    # gpt-image-2 keeps the input's shape, within its edge and pixel limits.
    scale = min(1.0, MAX_EDGE / max(width, height), math.sqrt(MAX_PIXELS / (width * height)))
    return max(1, int(width * scale)), max(1, int(height * scale))


def _given(fields: Mapping[str, Any], name: str) -> bool:
    return fields.get(name) not in (None, "")


def _choice(fields: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = fields.get(name)
    if value is None or value == "":
        return default
    if value not in allowed:
        raise invalid_value(name, value, allowed)
    return cast(str, value)


def _integer(fields: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = fields.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SimError(
            400,
            f"Invalid type for '{name}': expected an integer, but got {type(value).__name__} instead.",
            param=name,
            code="invalid_type",
        )
    if value < low:
        raise SimError(
            400,
            f"Invalid '{name}': integer below minimum value. Expected a value >= {low}, but got {value} instead.",
            param=name,
            code="integer_below_min_value",
        )
    if value > high:
        raise SimError(
            400,
            f"Invalid '{name}': integer above maximum value. Expected a value <= {high}, but got {value} instead.",
            param=name,
            code="integer_above_max_value",
        )
    return value


def _boolean(fields: Mapping[str, Any], name: str) -> bool:
    value = fields.get(name)
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise SimError(400, f"Invalid type for '{name}': expected a boolean.", param=name, code="invalid_type")
