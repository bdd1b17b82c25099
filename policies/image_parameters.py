"""Image parameter checks, before any upstream call: a request the image model
would refuse is refused here, with the rule and what to change, and costs nothing.

The rules are the models' own, as OpenAI's image API documents them:
gpt-image-2 takes free-form sizes within its edge, ratio and pixel limits, the
earlier models three fixed sizes; compression only for jpeg and webp; a
transparent background only where the model renders one, and never as jpeg.
A model these rules do not know (an Azure deployment's own name) is checked only
for what every image model shares.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import NoReturn

from providers.image_tokens import (
    MAX_IMAGES,
    MAX_PARTIAL_IMAGES,
    is_gpt_image_2_family,
    is_gpt_image_model,
    size_error,
)
from providers.types import Call, ImageSettings, MultipartBody, Surface, UploadedFile

from .base import PolicyRefused, Preflight, Rule, Settle, image_param
from .image_files import BadImage, ImageFacts, inspect_image

OUTPUT_FORMATS = ("png", "jpeg", "webp")
QUALITIES = ("low", "medium", "high", "auto")
QUALITIES_2_5 = (*QUALITIES, "xhigh", "max")  # the 2.5 family adds two
# The image model the Responses tool runs when the request names none.
DEFAULT_TOOL_MODEL = "gpt-image-2"


@dataclass(frozen=True, slots=True)
class ImageLimits:
    max_n: int = MAX_IMAGES
    max_input_images: int = 16
    max_input_bytes: int = 50 * 1024 * 1024  # OpenAI's limit per input image
    # OpenAI publishes none for pixels (it scales inputs down); ours keeps a small file
    # from claiming gigapixels. 50 megapixels: a 48 MP phone photo fits.
    max_input_pixels: int = 50_000_000


class ImageParameters(Rule):
    name = "image_parameters"

    def __init__(self, limits: ImageLimits) -> None:
        self.limits = limits

    async def admit(self, preflight: Preflight) -> Settle | None:
        call = preflight.call
        if call.surface is Surface.IMAGES_EDIT and isinstance(call.body, MultipartBody) and call.body.files:
            # Reading every input to its end is CPU work for a large image: off the event loop.
            await asyncio.to_thread(self.check, preflight)
        else:
            self.check(preflight)
        return None

    def check(self, preflight: Preflight) -> None:
        call = preflight.call
        image = call.image
        if image is None:
            return
        model = _rules_model(preflight)
        if model is not None:
            self._check_model_rules(model, call, image)
        self._check_output(call, image)
        self._check_counts(call, image)
        if call.surface is Surface.IMAGES_EDIT:
            self._check_inputs(call, image)

    def _check_model_rules(self, model: str, call: Call, image: ImageSettings) -> None:
        if image.size is not None and (problem := size_error(model, image.size)):
            sizes = "any WIDTHxHEIGHT within those limits" if is_gpt_image_2_family(model) else "only these"
            self._refuse(
                f"{problem} {model} takes {sizes}: 1024x1024, 1536x1024, 1024x1536 or auto always work.",
                image_param(call, "size"),
            )
        qualities = QUALITIES_2_5 if model.startswith("gpt-image-2.5") else QUALITIES
        if image.quality is not None and image.quality not in qualities:
            self._refuse(
                f"`quality` '{image.quality}' is not one {model} offers; use one of {', '.join(qualities)}.",
                image_param(call, "quality"),
            )
        if image.background == "transparent" and is_gpt_image_2_family(model):
            self._refuse(
                f"{model} does not render transparent backgrounds. Use `background: opaque` or `auto`, or route "
                "to a model that does (gpt-image-1.5).",
                image_param(call, "background"),
            )

    def _check_output(self, call: Call, image: ImageSettings) -> None:
        output_format = image.output_format
        if output_format is not None and output_format not in OUTPUT_FORMATS:
            self._refuse(
                f"`output_format` '{output_format}' is not an image format the model writes; use png, jpeg or webp.",
                image_param(call, "output_format"),
            )
        if image.output_compression is not None:
            if output_format not in ("jpeg", "webp"):
                self._refuse(
                    f"`output_compression` applies only to jpeg and webp, and this request makes "
                    f"{output_format or 'png (the default)'}. Set `output_format: webp` or `jpeg`, or drop "
                    "`output_compression`.",
                    image_param(call, "output_compression"),
                )
            if not 0 <= image.output_compression <= 100:
                self._refuse(
                    f"`output_compression` must be 0-100, not {image.output_compression}.",
                    image_param(call, "output_compression"),
                )
        if image.background == "transparent" and output_format == "jpeg":
            self._refuse(
                "A transparent background needs `output_format` png or webp; jpeg has no transparency.",
                image_param(call, "background"),
            )

    def _check_counts(self, call: Call, image: ImageSettings) -> None:
        if not 1 <= image.n <= self.limits.max_n:
            self._refuse(f"`n` must be between 1 and {self.limits.max_n}, not {image.n}.", image_param(call, "n"))
        if not 0 <= image.partial_images <= MAX_PARTIAL_IMAGES:
            self._refuse(
                f"`partial_images` must be between 0 and {MAX_PARTIAL_IMAGES}, not {image.partial_images}.",
                image_param(call, "partial_images"),
            )

    def _check_inputs(self, call: Call, image: ImageSettings) -> None:
        if image.input_images == 0:
            self._refuse("An edit needs at least one image: send it as the `image` (or `image[]`) file.", "image")
        if image.input_images > self.limits.max_input_images:
            self._refuse(
                f"An edit takes at most {self.limits.max_input_images} images; this one has {image.input_images}.",
                "image",
            )
        if not isinstance(call.body, MultipartBody):
            return  # the JSON form names images by URL or file id: nothing here to inspect
        inputs = [self._inspect(call.body, file) for file in image.inputs]
        if image.mask is not None:
            self._check_mask(self._inspect(call.body, image.mask), inputs[0])

    def _inspect(self, body: MultipartBody, file: UploadedFile) -> ImageFacts:
        """The file, if it is a whole PNG, JPEG or WebP within the limits; else refused."""
        if file.size > self.limits.max_input_bytes:
            mb = self.limits.max_input_bytes // (1024 * 1024)
            self._refuse(
                f"{_named(file)} is {file.size / 1024 / 1024:.1f} MB; each input may be at most {mb} MB. "
                "Send a smaller image.",
                file.field,
            )
        try:
            return inspect_image(body.file_bytes(file), max_pixels=self.limits.max_input_pixels)
        except BadImage as problem:
            self._refuse(f"{_named(file)} {problem}. Send a whole PNG, JPEG or WebP image.", file.field)

    def _check_mask(self, mask: ImageFacts, first: ImageFacts) -> None:
        if mask.format != "png" or not mask.has_alpha:
            self._refuse("The `mask` must be a PNG with an alpha channel (transparent where to edit).", "mask")
        if (mask.width, mask.height) != (first.width, first.height):
            self._refuse(
                f"The `mask` is {mask.width}x{mask.height} but the first image is {first.width}x{first.height}; "
                "the mask must have the same size as the image it applies to.",
                "mask",
            )

    def _refuse(self, message: str, param: str) -> NoReturn:
        raise PolicyRefused(self.name, message, param=param)


def _rules_model(preflight: Preflight) -> str | None:
    """The image model whose rules apply, if these rules know it."""
    call = preflight.call
    if call.surface is Surface.RESPONSES:
        candidates = [call.image.model if call.image and call.image.model else DEFAULT_TOOL_MODEL]
    else:
        candidates = [preflight.upstream_model, call.model]
    return next((model for model in candidates if is_gpt_image_model(model)), None)


def _named(file: UploadedFile) -> str:
    return f"`{file.field}` file '{file.filename}'" if file.filename else f"the `{file.field}` file"
