"""providers.image_tokens against the published tables (openai-image-contract.md §1a, §7c)."""

from __future__ import annotations

import pytest

from providers.image_tokens import (
    image_input_tokens,
    image_output_tokens,
    is_gpt_image_2_family,
    parse_size,
    size_error,
    text_tokens,
)

# §7c: gpt-image-2 output tokens per image (low, medium, high).
GPT_IMAGE_2_TABLE = {
    "1024x1024": (196, 1756, 7024),
    "1024x1536": (158, 1372, 5488),
    "1536x1024": (158, 1372, 5488),
    "1536x864": (120, 1078, 4312),
    "1920x1080": (147, 1320, 5280),
    "2048x1152": (157, 1413, 5650),
    "1152x2048": (157, 1413, 5650),
    "2048x2048": (397, 3568, 14272),
    "2560x1440": (205, 1843, 7370),
    "3840x2160": (371, 3336, 13342),
    "2304x768": (76, 724, 2895),
}
# §7c: models before gpt-image-2.
LEGACY_TABLE = {
    "1024x1024": (272, 1056, 4160),
    "1024x1536": (408, 1584, 6240),
    "1536x1024": (400, 1568, 6208),
}
LEGACY_MODELS = ["gpt-image-1", "gpt-image-1.5", "gpt-image-1-mini", "chatgpt-image-latest"]
GPT_IMAGE_2_MODELS = ["gpt-image-2", "gpt-image-2-2026-04-21", "gpt-image-2.5-flare"]


@pytest.mark.parametrize("model", GPT_IMAGE_2_MODELS)
@pytest.mark.parametrize("size", list(GPT_IMAGE_2_TABLE))
def test_gpt_image_2_formula_reproduces_the_table(model: str, size: str) -> None:
    counted = tuple(image_output_tokens(model, size, quality) for quality in ("low", "medium", "high"))
    assert counted == GPT_IMAGE_2_TABLE[size]


@pytest.mark.parametrize(
    ("size", "quality", "tokens"),
    [
        ("1792x1024", "high", 5063),  # observed points quoted in §7c
        ("3584x2048", "high", 12329),
        ("1402x1122", "low", 186),  # a real `size: auto` output, edges not multiples of 16
        ("1152x2048", "medium", 1413),
    ],
)
def test_gpt_image_2_formula_matches_observed_usage(size: str, quality: str, tokens: int) -> None:
    assert image_output_tokens("gpt-image-2", size, quality) == tokens


@pytest.mark.parametrize("model", LEGACY_MODELS)
@pytest.mark.parametrize("size", list(LEGACY_TABLE))
def test_legacy_models_use_the_fixed_table(model: str, size: str) -> None:
    counted = tuple(image_output_tokens(model, size, quality) for quality in ("low", "medium", "high"))
    assert counted == LEGACY_TABLE[size]


def test_output_tokens_refuse_unresolved_or_unknown_inputs() -> None:
    with pytest.raises(ValueError, match="auto"):
        image_output_tokens("gpt-image-2", "1024x1024", "auto")
    with pytest.raises(ValueError, match="auto"):
        image_output_tokens("gpt-image-2", "auto", "low")
    with pytest.raises(ValueError, match="renders only"):
        image_output_tokens("gpt-image-1", "2048x2048", "low")
    with pytest.raises(ValueError, match="not a GPT Image model"):
        image_output_tokens("gpt-4.1", "1024x1024", "low")


def test_family_membership() -> None:
    assert all(is_gpt_image_2_family(model) for model in GPT_IMAGE_2_MODELS)
    assert not any(is_gpt_image_2_family(model) for model in LEGACY_MODELS)


@pytest.mark.parametrize(
    ("width", "height", "tokens"),
    [
        (512, 512, 65 + 129 * 1),
        (1024, 1024, 65 + 129 * 4),  # short side 768 → 768x768 → 2x2 tiles
        (2048, 4096, 65 + 129 * 6),  # fit 1024x2048, short side 768 → 768x1536 → 2x3 tiles
        (4000, 3000, 65 + 129 * 4),  # fit 2048x1536, short side 768 → 1024x768 → 2x2 tiles
        (800, 600, 65 + 129 * 4),  # short side ≤ 768: no scaling → 2x2 tiles
        (300, 200, 65 + 129 * 1),
        (100_000, 10, 65 + 129 * 4),  # extreme aspect keeps at least one pixel row
    ],
)
def test_input_image_tiles(width: int, height: int, tokens: int) -> None:
    assert image_input_tokens(width, height) == tokens


def test_input_image_rejects_empty_dimensions() -> None:
    with pytest.raises(ValueError):
        image_input_tokens(0, 100)


@pytest.mark.parametrize(("text", "tokens"), [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("x" * 400, 100)])
def test_text_tokens(text: str, tokens: int) -> None:
    assert text_tokens(text) == tokens


@pytest.mark.parametrize(
    ("size", "parsed"),
    [
        ("1024x1536", (1024, 1536)),
        ("auto", None),
        ("1024X1024", None),
        ("9:16", None),
        ("0x1024", None),
        ("1024x", None),
        (" 1024x1024", None),
        ("-16x16", None),
    ],
)
def test_parse_size(size: str, parsed: tuple[int, int] | None) -> None:
    assert parse_size(size) == parsed


# 1920x1080 is in the calculator table but 1080 is not a multiple of 16, so a request may not ask for it.
@pytest.mark.parametrize(
    "size", ["auto", *(size for size in GPT_IMAGE_2_TABLE if size != "1920x1080"), "2160x3840", "1024x3072", "816x816"]
)
def test_gpt_image_2_accepts_valid_sizes(size: str) -> None:
    assert size_error("gpt-image-2", size) is None


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ("1000x1000", "Invalid size '1000x1000'. Width and height must both be divisible by 16."),
        ("1666x2514", "Invalid size '1666x2514'. Width and height must both be divisible by 16."),
        ("1920x1080", "Invalid size '1920x1080'. Width and height must both be divisible by 16."),
        ("9:16", "Invalid size '9:16'. Expected WIDTHxHEIGHT, for example '1824x1024'."),
        ("4096x1024", "Invalid size '4096x1024'. The longest edge must be at most 3840 pixels."),
        ("3072x1008", "Invalid size '3072x1008'. The aspect ratio must be between 1:3 and 3:1."),
        ("1024x576", "Invalid size '1024x576'. The total number of pixels must be between 655360 and 8294400."),
        ("3840x2176", "Invalid size '3840x2176'. The total number of pixels must be between 655360 and 8294400."),
    ],
)
def test_gpt_image_2_size_errors(size: str, message: str) -> None:
    assert size_error("gpt-image-2-2026-04-21", size) == message


@pytest.mark.parametrize("model", LEGACY_MODELS)
def test_legacy_models_accept_only_standard_sizes(model: str) -> None:
    for size in ("auto", "1024x1024", "1536x1024", "1024x1536"):
        assert size_error(model, size) is None
    assert size_error(model, "2048x2048") == (
        "Invalid size '2048x2048'. Supported sizes are 1024x1024, 1024x1536, 1536x1024, and auto."
    )
    assert size_error(model, "big") == "Invalid size 'big'. Expected WIDTHxHEIGHT, for example '1824x1024'."
