"""Server-sent event framing, as OpenAI frames its streams."""

from __future__ import annotations

from typing import Final

# Chat Completions ends its stream with this line; image and Responses streams do not.
DONE: Final = b"data: [DONE]\n\n"


def named_event(event_type: str, data: bytes) -> bytes:
    """`event:` + `data:` frame, used by the Images and Responses streams."""
    return b"event: " + event_type.encode() + b"\ndata: " + data + b"\n\n"


def data_event(data: bytes) -> bytes:
    """`data:`-only frame, used by the Chat Completions stream."""
    return b"data: " + data + b"\n\n"
