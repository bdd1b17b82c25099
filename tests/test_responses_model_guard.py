"""The Responses model guard refuses an image model in the Responses `model` field
and lets mainline models and the other surfaces through."""

from __future__ import annotations

import pytest

from policies.base import PolicyRefused
from policies.responses_model_guard import ResponsesModelGuard
from providers.types import ImageSettings, Surface

from .preflights import preflight

guard = ResponsesModelGuard()


@pytest.mark.parametrize("model", ["gpt-image-2", "gpt-image-2-2026-04-21", "gpt-image-1.5", "chatgpt-image-latest"])
def test_an_image_model_in_the_responses_model_field_is_refused_with_what_to_do(model):
    with pytest.raises(PolicyRefused) as refused:
        guard.check(preflight(Surface.RESPONSES, model=model, image=None))
    error = refused.value
    assert (error.status, error.param, error.policy) == (400, "model", "responses_model_guard")
    assert f"'{model}' is an image model" in error.message
    assert "mainline model" in error.message and '"type": "image_generation"' in error.message


def test_a_route_whose_upstream_is_an_image_model_is_refused_too():
    """A route alias that hides the image model behind another name is no way round the rule."""
    with pytest.raises(PolicyRefused, match="'gpt-image-2' is an image model"):
        guard.check(preflight(Surface.RESPONSES, model="pictures", upstream_model="gpt-image-2", image=None))


def test_a_mainline_model_with_the_image_tool_passes():
    tool = ImageSettings(model="gpt-image-2", size="1024x1024", quality="low")
    guard.check(preflight(Surface.RESPONSES, model="gpt-5.4", image=tool))


def test_the_images_api_with_an_image_model_passes():
    guard.check(preflight(Surface.IMAGES_GENERATE, model="gpt-image-2"))
