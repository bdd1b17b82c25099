"""What a stream the client closed has consumed, as far as can be known without the
upstream's usage: the estimate's input (the request was read whole, so that part is
as good as any estimate) and the output the stream relayed before the client left:

- text (chat, Responses): the characters relayed, counted as tokens by the rule the
  estimate counts prompts with (one token per four characters, rounded up);
- images: 100 image output tokens for each partial image delivered, as OpenAI bills
  them, and a whole image's output tokens for each image completed.

Where the upstream's usage did arrive, it is the cost; an image stream of several
images closed midway has the usage of the images it completed, and the partial images
of the one in progress are added to it."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from providers.image_tokens import tokens_in_chars
from providers.types import Surface

from .usage import Metered, Relayed, Usage
from .usage_estimate import PARTIAL_IMAGE_TOKENS, output_tokens_per_image

Basis = Literal["usage", "partial_estimate"]


def closed_stream_usage(
    surface: Surface, estimated: Usage, relayed: Relayed, reported: Usage | None
) -> tuple[Usage, Basis]:
    """The usage to price a stream the client closed at, and what it rests on."""
    if reported is not None:
        pending = relayed.partial_images_since_image if surface.makes_images else 0
        if not pending:
            return reported, "usage"
        first, *others = reported
        return (first + Metered(first.model, image_output=pending * PARTIAL_IMAGE_TOKENS), *others), "partial_estimate"
    return tuple(_as_relayed(part, relayed) for part in estimated), "partial_estimate"


def _as_relayed(estimated: Metered, relayed: Relayed) -> Metered:
    """One model's estimate with its output replaced by what was relayed."""
    if estimated.images:  # the image model: the Images API's, or the Responses image tool's
        per_image = output_tokens_per_image(estimated.model, estimated.size or "", estimated.quality or "")
        made = relayed.partial_images * PARTIAL_IMAGE_TOKENS + relayed.images * per_image
        return replace(estimated, text_output=0, image_output=made, images=relayed.images)
    return replace(estimated, text_output=tokens_in_chars(relayed.text_chars), image_output=0)
