"""A key in the validation stage makes only low-quality single images; production
keys and non-image work are not limited."""

from __future__ import annotations

import pytest

from policies.base import Caller, PolicyRefused
from policies.launch_stage import LaunchStage
from providers.types import ImageSettings, Surface

from .preflights import preflight

stage = LaunchStage()
VALIDATING = Caller(key_id="new-app", team="growth", stage="validation")
PRODUCTION = Caller(key_id="web-app", team="growth", stage="production")


def test_a_validation_key_may_make_one_low_quality_image():
    stage.check(preflight(caller=VALIDATING, image=ImageSettings(quality="low", n=1)))


@pytest.mark.parametrize(
    ("image", "param", "said"),
    [
        (ImageSettings(quality="medium"), "quality", "`quality: low` (this request asks for medium)"),
        (ImageSettings(quality=None), "quality", "asks for auto"),
        (ImageSettings(quality="low", n=2), "n", "`n: 1` (this request asks for 2)"),
    ],
)
def test_a_validation_key_is_refused_anything_more(image, param, said):
    with pytest.raises(PolicyRefused) as refused:
        stage.check(preflight(caller=VALIDATING, image=image))
    error = refused.value
    assert (error.status, error.param, error.policy) == (403, param, "launch_stage")
    assert said in error.message and "stage: production" in error.message and "'new-app'" in error.message


def test_the_responses_image_tool_is_held_to_the_same_rule():
    with pytest.raises(PolicyRefused) as refused:
        stage.check(
            preflight(Surface.RESPONSES, model="gpt-5.4", caller=VALIDATING, image=ImageSettings(quality="high"))
        )
    assert refused.value.param == "tools[image_generation].quality"


def test_production_keys_and_text_work_are_not_limited():
    stage.check(preflight(caller=PRODUCTION, image=ImageSettings(quality="high", n=4)))
    stage.check(preflight(Surface.CHAT, model="gpt-5.4", caller=VALIDATING, image=None))
