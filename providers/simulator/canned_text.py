"""The deterministic text the chat and Responses endpoints answer with."""

from __future__ import annotations

from typing import Final

from .markers import strip_markers

_ECHO_WORDS: Final = 8
_PIECES: Final = 4
_SLICES: Final = 6


def reply_text(model: str, user_text: str) -> str:
    """A short reply naming the model and quoting the start of the user's text,
    so a test can tell which request an answer belongs to."""
    words = strip_markers(user_text).split()
    if not words:
        return f"Hello from the Tollgate simulator ({model})."
    quoted = " ".join(words[:_ECHO_WORDS]) + ("…" if len(words) > _ECHO_WORDS else "")
    return f'Simulated reply from {model}: you said "{quoted}".'


def stream_pieces(text: str) -> list[str]:
    """`text` split into a few word-aligned deltas whose concatenation is `text`."""
    words = text.split(" ")
    step = max(1, -(-len(words) // _PIECES))
    groups = [words[start : start + step] for start in range(0, len(words), step)]
    return [" ".join(group) + (" " if index < len(groups) - 1 else "") for index, group in enumerate(groups)]


def stream_slices(text: str) -> list[str]:
    """`text` cut into a few slices whose concatenation is `text`, as a model streams
    JSON (arguments, structured output): slices need not end on a word."""
    size = max(1, -(-len(text) // _SLICES))
    return [text[start : start + size] for start in range(0, len(text), size)]
