"""`POST /v1/chat/completions`, plain and streamed."""

from __future__ import annotations

import os
import time
from typing import Any

from providers.image_tokens import text_tokens

from .api_call import ApiCall
from .canned_text import reply_text, stream_pieces
from .errors import SimError, missing_parameter
from .images import ImageCache
from .json_bytes import dumps
from .replies import BodyReply, Reply, StreamReply
from .sse import DONE, data_event
from .usage import chat_usage


async def create_chat_completion(call: ApiCall, images: ImageCache) -> Reply:
    model = call.model
    if not model:
        raise missing_parameter("model")
    messages = call.fields.get("messages")
    if not messages:
        raise missing_parameter("messages")
    if not isinstance(messages, list) or not all(isinstance(message, dict) for message in messages):
        raise SimError(
            400, "Invalid type for 'messages': expected an array of objects.", param="messages", code="invalid_type"
        )
    texts = [_message_text(message) for message in messages]
    user_texts = [text for message, text in zip(messages, texts, strict=True) if message.get("role") == "user"]
    text = reply_text(model, user_texts[-1] if user_texts else "")
    usage = chat_usage(sum(text_tokens(each) for each in texts), text_tokens(text))
    head = {
        "id": "chatcmpl-sim" + os.urandom(12).hex(),
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_simulator",
        "service_tier": "default",
    }
    if call.fields.get("stream") is True:
        options = call.fields.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return StreamReply(_chunks(head, text, usage if include_usage else None))
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
        "logprobs": None,
        "finish_reason": "stop",
    }
    return BodyReply(200, dumps({**head, "object": "chat.completion", "choices": [choice], "usage": usage}))


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _chunks(head: dict[str, Any], text: str, usage: dict[str, Any] | None) -> list[bytes]:
    """Role, content pieces, finish reason; then, if asked for, the usage chunk, then `[DONE]`."""
    chunk_head = {**head, "object": "chat.completion.chunk"}
    if usage is not None:
        # With include_usage, every chunk carries `usage: null` except the last.
        chunk_head["usage"] = None
    deltas: list[tuple[dict[str, Any], str | None]] = [({"role": "assistant", "content": "", "refusal": None}, None)]
    deltas += [({"content": piece}, None) for piece in stream_pieces(text)]
    deltas.append(({}, "stop"))
    frames = [
        data_event(
            dumps(
                {
                    **chunk_head,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
                }
            )
        )
        for delta, finish_reason in deltas
    ]
    if usage is not None:
        frames.append(data_event(dumps({**chunk_head, "choices": [], "usage": usage})))
    frames.append(DONE)
    return frames
