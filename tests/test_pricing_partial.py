"""The cost of a stream the client closed: the upstream's usage where it arrived,
else the estimate's input and the output relayed before the client left, priced
exactly on the provider's table."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from providers.types import Call, ImageSettings, JsonBody, Surface
from proxy.config import load_config
from proxy.pricing import Pricer
from proxy.pricing.partial import closed_stream_usage
from proxy.pricing.usage import Metered, Relayed

ROOT = Path(__file__).resolve().parents[1]
PER_MILLION = Decimal(1_000_000)


@pytest.fixture(scope="module")
def pricer() -> Pricer:
    return Pricer(load_config(ROOT / "config.yaml", {}).config)


def call(surface: Surface, fields: dict, image: ImageSettings | None = None) -> Call:
    return Call("r", surface, fields["model"], True, JsonBody(orjson.dumps(fields), fields), image=image)


def test_a_closed_chat_stream_costs_its_estimated_input_and_the_text_it_relayed(pricer):
    chat = call(Surface.CHAT, {"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": "x" * 48}]})
    estimate = pricer.estimate(chat, "gpt-5.4-mini", "openai", "gpt-5.4-mini")
    assert estimate.usage == (Metered("gpt-5.4-mini", text_input=12, text_output=1000),)

    usage, basis = closed_stream_usage(Surface.CHAT, estimate.usage, Relayed(text_chars=21), reported=None)
    assert basis == "partial_estimate"
    assert usage == (Metered("gpt-5.4-mini", text_input=12, text_output=6),)  # 21 characters: 6 tokens
    priced = pricer.price(usage, "gpt-5.4-mini", "openai", "gpt-5.4-mini")
    assert priced.usd == Decimal("0.000036")  # 12 x $0.75/M + 6 x $4.50/M (catalog), not the estimate's 0.004509
    assert priced.usd < estimate.priced.usd


def test_usage_that_arrived_is_the_cost(pricer):
    reported = (Metered("gpt-5.4-mini", text_input=12, text_output=40),)
    assert closed_stream_usage(Surface.CHAT, (), Relayed(text_chars=9), reported) == (reported, "usage")
    images = (Metered("gpt-image-2", text_input=5, image_output=396, images=1),)
    assert closed_stream_usage(Surface.IMAGES_GENERATE, (), Relayed(partial_images=2, images=1), images) == (
        images,
        "usage",
    )


def image_estimate(pricer: Pricer, **settings) -> tuple[Metered, ...]:
    fields = {"model": "gpt-image-2", "prompt": "a heron at dusk", "stream": True, **settings}
    image = ImageSettings(
        size=settings.get("size"),
        quality=settings.get("quality"),
        n=settings.get("n", 1),
        partial_images=settings.get("partial_images", 0),
    )
    return pricer.estimate(call(Surface.IMAGES_GENERATE, fields, image), "gpt-image-2", "openai", "gpt-image-2").usage


def test_each_partial_image_delivered_costs_100_image_output_tokens(pricer):
    estimated = image_estimate(pricer, size="1024x1024", quality="low", partial_images=3)
    usage, basis = closed_stream_usage(Surface.IMAGES_GENERATE, estimated, Relayed(partial_images=2), None)
    assert basis == "partial_estimate"
    assert usage == (Metered("gpt-image-2", text_input=4, image_output=200, images=0, size="1024x1024", quality="low"),)
    priced = pricer.price(usage, "gpt-image-2", "openai", "gpt-image-2")
    assert priced.usd == (4 * Decimal(5) + 200 * Decimal(30)) / PER_MILLION
    assert [line.item for line in priced.cost.lines] == ["text_input tokens", "image_output tokens"]


def test_a_completed_image_without_usage_costs_a_whole_images_output_tokens(pricer):
    estimated = image_estimate(pricer, size="1024x1024", quality="low", n=2, partial_images=1)
    relayed = Relayed(partial_images=2, images=1, partial_images_since_image=1)
    (metered,), _ = closed_stream_usage(Surface.IMAGES_GENERATE, estimated, relayed, None)
    assert (metered.image_output, metered.images) == (2 * 100 + 196, 1)  # 196: one low 1024x1024 image


def test_an_image_in_progress_adds_its_partial_images_to_the_usage_of_those_completed():
    reported = (Metered("gpt-image-2", text_input=4, image_output=296, images=1, size="1024x1024", quality="low"),)
    relayed = Relayed(partial_images=3, images=1, partial_images_since_image=2)
    usage, basis = closed_stream_usage(Surface.IMAGES_GENERATE, (), relayed, reported)
    assert basis == "partial_estimate"
    assert usage == (
        Metered("gpt-image-2", text_input=4, image_output=296 + 200, images=1, size="1024x1024", quality="low"),
    )


def test_a_closed_responses_stream_with_the_image_tool_costs_both_models_as_relayed(pricer):
    fields = {
        "model": "gpt-5.4",
        "input": "draw a kite" + "." * 21,  # 32 characters: 8 tokens
        "tools": [{"type": "image_generation", "quality": "low", "size": "1024x1024", "partial_images": 2}],
    }
    image = ImageSettings(model="gpt-image-2", size="1024x1024", quality="low", partial_images=2)
    estimate = pricer.estimate(call(Surface.RESPONSES, fields, image), "gpt-5.4", "openai", "gpt-5.4")
    usage, basis = closed_stream_usage(
        Surface.RESPONSES, estimate.usage, Relayed(text_chars=10, partial_images=1), None
    )
    assert basis == "partial_estimate"
    main, tool = usage
    assert (main.model, main.text_input, main.text_output, main.image_output) == ("gpt-5.4", 8, 3, 0)
    assert (tool.model, tool.text_input, tool.image_output, tool.images) == ("gpt-image-2", 8, 100, 0)
