"""The Responses model guard. On the Responses API the `model` field takes a
mainline model; images come from the `image_generation` tool, whose image model
(gpt-image-2) runs behind it. Naming the image model there is the commonest
launch mistake, and OpenAI answers it with an error that does not say what to do.
"""

from __future__ import annotations

from providers.image_tokens import is_gpt_image_model
from providers.types import Surface

from .base import PolicyRefused, Preflight, Rule


def is_image_model(model: str) -> bool:
    return is_gpt_image_model(model) or model.startswith("dall-e")


class ResponsesModelGuard(Rule):
    name = "responses_model_guard"

    def check(self, preflight: Preflight) -> None:
        if preflight.call.surface is not Surface.RESPONSES:
            return
        named = next((m for m in (preflight.call.model, preflight.upstream_model) if is_image_model(m)), None)
        if named is None:
            return
        raise PolicyRefused(
            self.name,
            f"'{named}' is an image model and cannot be the `model` of a Responses request. Put a mainline "
            "model there (e.g. gpt-5.4) and add the image tool: "
            '`tools: [{"type": "image_generation"}]`; the image model runs behind the tool. '
            "For a single image without a conversation, use POST /v1/images/generations instead.",
            param="model",
        )
