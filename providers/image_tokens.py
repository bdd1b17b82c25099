"""The token arithmetic OpenAI bills GPT Image requests by.

Pure functions, no I/O and no imports of ours, so the simulator (which must
answer with realistic `usage`) and the proxy's cost estimator (which must
pre-charge before the upstream answers) share one exact implementation.

Sources:
- the fixed output-token table for gpt-image-1 / 1.5 / 1-mini /
  chatgpt-image-latest (OpenAI image-generation guide, "Calculating costs").
- the gpt-image-2 formula, reverse-engineered on the OpenAI community forum
  (thread 1382699) from the official calculator; it reproduces every published
  and observed point (196/1756/7024 for 1024x1024, 5063 for 1792x1024 high, …).
- the gpt-image-2 size rules (the guide's table) and the observed error wording.
- The input-image tile rule is OpenAI's published vision rule (see
  `image_input_tokens`).

Billing must always prefer the `usage` the upstream returns; these numbers are
for estimates and for the simulator.
"""

from __future__ import annotations

import re
from typing import Final

QUALITIES: Final = ("low", "medium", "high")

# gpt-image-2: per-quality factor `f` of the formula (§7c).
_GPT_IMAGE_2_FACTOR: Final = {"low": 16, "medium": 48, "high": 96}

# Models before gpt-image-2 only render these three sizes (§7c guide table).
_TABLE_TOKENS: Final = {
    (1024, 1024): {"low": 272, "medium": 1056, "high": 4160},
    (1024, 1536): {"low": 408, "medium": 1584, "high": 6240},
    (1536, 1024): {"low": 400, "medium": 1568, "high": 6208},
}
STANDARD_SIZES: Final = ("1024x1024", "1536x1024", "1024x1536")

# What one request may ask for (§1): `n` images, each with up to this many partial images.
MAX_IMAGES: Final = 10
MAX_PARTIAL_IMAGES: Final = 3

# gpt-image-2 size limits (§1a, guide table).
SIZE_MULTIPLE: Final = 16
MAX_EDGE: Final = 3840
MAX_ASPECT: Final = 3
MIN_PIXELS: Final = 655_360
MAX_PIXELS: Final = 8_294_400

_SIZE_PATTERN: Final = re.compile(r"(\d{1,6})x(\d{1,6})")


def is_gpt_image_2_family(model: str) -> bool:
    """`gpt-image-2`, its snapshots and later 2.x models: free-form sizes, token formula."""
    return model.startswith("gpt-image-2")


def is_gpt_image_model(model: str) -> bool:
    """Any model these functions know how to count."""
    return model.startswith(("gpt-image", "chatgpt-image"))


def parse_size(size: str) -> tuple[int, int] | None:
    """`"1536x864"` → `(1536, 864)`; `None` for `auto` or anything that is not `WxH`."""
    match = _SIZE_PATTERN.fullmatch(size)
    if match is None:
        return None
    width, height = int(match[1]), int(match[2])
    if width == 0 or height == 0:
        return None
    return width, height


def size_error(model: str, size: str) -> str | None:
    """OpenAI-style message if `size` is not valid for `model`, else `None`.

    The first message is the one OpenAI was observed to send; the wording of the
    edge, ratio and pixel messages was not captured, so ours follow its pattern.
    """
    if size == "auto":
        return None
    _require_known(model)
    dims = parse_size(size)
    if dims is None:
        return f"Invalid size '{size}'. Expected WIDTHxHEIGHT, for example '1824x1024'."
    if not is_gpt_image_2_family(model):
        if size in STANDARD_SIZES:
            return None
        return f"Invalid size '{size}'. Supported sizes are 1024x1024, 1024x1536, 1536x1024, and auto."
    width, height = dims
    long_edge, short_edge = max(dims), min(dims)
    if width % SIZE_MULTIPLE or height % SIZE_MULTIPLE:
        return f"Invalid size '{size}'. Width and height must both be divisible by {SIZE_MULTIPLE}."
    if long_edge > MAX_EDGE:
        return f"Invalid size '{size}'. The longest edge must be at most {MAX_EDGE} pixels."
    if long_edge > MAX_ASPECT * short_edge:
        return f"Invalid size '{size}'. The aspect ratio must be between 1:{MAX_ASPECT} and {MAX_ASPECT}:1."
    if not MIN_PIXELS <= width * height <= MAX_PIXELS:
        return f"Invalid size '{size}'. The total number of pixels must be between {MIN_PIXELS} and {MAX_PIXELS}."
    return None


def image_output_tokens(model: str, size: str, quality: str) -> int:
    """Output tokens OpenAI bills for one image (partial images not included).

    `quality` must already be resolved; `auto` is a server-side choice, so the
    caller decides what it stands for (OpenAI's usage shows it resolving to medium).
    """
    _require_known(model)
    if quality not in QUALITIES:
        raise ValueError(f"quality must be one of {QUALITIES} (resolve 'auto' first), got {quality!r}")
    dims = parse_size(size)
    if dims is None:
        raise ValueError(f"size must be WIDTHxHEIGHT (resolve 'auto' first), got {size!r}")
    if not is_gpt_image_2_family(model):
        if dims not in _TABLE_TOKENS:
            raise ValueError(f"{model} renders only {', '.join(STANDARD_SIZES)}; got {size!r}")
        return _TABLE_TOKENS[dims][quality]
    width, height = dims
    factor = _GPT_IMAGE_2_FACTOR[quality]
    long_edge, short_edge = max(dims), min(dims)
    # Patches along the short edge: round(factor * S / L), half rounding up, in integers.
    short_patches = (2 * factor * short_edge + long_edge) // (2 * long_edge)
    return _ceil_div(factor * short_patches * (2_000_000 + width * height), 4_000_000)


def image_input_tokens(width: int, height: int) -> int:
    """Tokens for one input image (edits, Responses `input_image`).

    This is OpenAI's published vision tile rule (fit within 2048x2048, scale the
    short side down to 768, count 512 px tiles) with the GPT Image constants
    65 base + 129 per tile. OpenAI does not publish the image models' exact input
    rule (gpt-image-2 processes inputs at high fidelity), so treat this as an
    approximation and bill from the upstream's `usage`. Scaling truncates to whole
    pixels, as the widely used reference implementation of the rule does.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image dimensions must be positive, got {width}x{height}")
    if width > 2048 or height > 2048:
        if width >= height:
            width, height = 2048, max(1, height * 2048 // width)
        else:
            width, height = max(1, width * 2048 // height), 2048
    if width >= height and height > 768:
        width, height = width * 768 // height, 768
    elif height > width and width > 768:
        width, height = 768, height * 768 // width
    tiles = _ceil_div(width, 512) * _ceil_div(height, 512)
    return 65 + 129 * tiles


def text_tokens(text: str) -> int:
    """Estimate: one token per four characters, rounded up (0 for empty text)."""
    return tokens_in_chars(len(text))


def tokens_in_chars(characters: int) -> int:
    """`text_tokens` for text known only by its length (what a stream relayed)."""
    return _ceil_div(characters, 4)


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _require_known(model: str) -> None:
    if not is_gpt_image_model(model):
        raise ValueError(f"not a GPT Image model: {model!r}")
