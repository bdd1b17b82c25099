"""`usage` objects, shaped exactly as each OpenAI API reports them.

The shapes differ on purpose: the proxy's billing must cope with every one
(the Images API sends no `output_tokens_details`; Responses reports the image
tool apart from the mainline model, in `tool_usage.image_gen`).
"""

from __future__ import annotations

from typing import Any


def images_usage(text_tokens: int, image_tokens: int, output_tokens: int) -> dict[str, Any]:
    """Images API (`/images/generations`, `/images/edits`, and their streams)."""
    input_tokens = text_tokens + image_tokens
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def image_tool_usage(text_tokens: int, image_tokens: int, output_tokens: int) -> dict[str, Any]:
    """Responses `tool_usage`: the image tool's tokens, billed at the image model's rates."""
    image_gen = images_usage(text_tokens, image_tokens, output_tokens)
    image_gen["output_tokens_details"] = {"image_tokens": output_tokens, "text_tokens": 0}
    return {"image_gen": image_gen, "web_search": {"num_requests": 0}}


def responses_usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    """Responses `usage`: the mainline model only."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def chat_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def embeddings_usage(prompt_tokens: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
