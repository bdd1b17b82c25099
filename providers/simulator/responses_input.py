"""What a Responses `input` holds, as the simulator reads it: its texts (for usage),
the last user message, data-URL images, and where a function-calling exchange stands."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import SimError
from .function_tools import Conversation
from .image_inputs import decode_data_url


@dataclass(frozen=True, slots=True)
class ResponsesInput:
    texts: list[str]
    last_user_text: str
    images: list[bytes]
    ends_with_tool_result: bool = False
    called: frozenset[str] = field(default_factory=frozenset)

    def conversation(self) -> Conversation:
        return Conversation(self.last_user_text, self.ends_with_tool_result, self.called)


def read_input(value: Any) -> ResponsesInput:
    """`input`: a string, or a list of messages and items (`function_call`, `function_call_output` …)."""
    if isinstance(value, str):
        return ResponsesInput([value], value, [])
    if value is None:
        return ResponsesInput([], "", [])
    if not isinstance(value, list):
        raise SimError(
            400, "Invalid type for 'input': expected a string or an array.", param="input", code="invalid_type"
        )
    texts: list[str] = []
    images: list[bytes] = []
    last_user_text = ""
    called: set[str] = set()
    for item in value:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "function_call" and isinstance(item.get("name"), str):
            called.add(item["name"])
        # A call's arguments and a tool's output are read by the model like any text.
        texts += [item[key] for key in ("arguments", "output") if isinstance(item.get(key), str)]
        content = item.get("content")
        parts = [{"type": "input_text", "text": content}] if isinstance(content, str) else content
        parts = parts if isinstance(parts, list) else []
        item_texts = [part["text"] for part in parts if isinstance(part, dict) and isinstance(part.get("text"), str)]
        texts += item_texts
        for part in parts:
            if isinstance(part, dict) and part.get("type") == "input_image":
                url = part.get("image_url")
                data = decode_data_url(url, param="input") if isinstance(url, str) else None
                if data is not None:
                    images.append(data)
        if item.get("role") == "user" and item_texts:
            last_user_text = " ".join(item_texts)
    last = value[-1] if value else None
    ends_with_tool_result = isinstance(last, dict) and last.get("type") == "function_call_output"
    return ResponsesInput(texts, last_user_text, images, ends_with_tool_result, frozenset(called))
