"""One choice of a chat completion — text or function calls — as a whole message, or as
the deltas OpenAI streams it in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from providers.image_tokens import text_tokens

from .canned_text import stream_pieces, stream_slices

Delta = tuple[dict[str, Any], str | None]  # (delta, finish_reason)


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text

    def whole(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True, slots=True)
class ChatChoice:
    index: int
    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = "stop"
    json: bool = False  # structured content streams in slices, prose in words

    def output_tokens(self) -> int:
        return text_tokens(self.content or "") + sum(
            text_tokens(call.name) + text_tokens(call.arguments) for call in self.tool_calls
        )

    def whole(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content, "refusal": None, "annotations": []}
        if self.tool_calls:
            message["tool_calls"] = [call.whole() for call in self.tool_calls]
        return {"index": self.index, "message": message, "logprobs": None, "finish_reason": self.finish_reason}

    def deltas(self) -> list[Delta]:
        """A call opens with its id, name and empty arguments, then the arguments come in
        fragments, each delta naming the call by `index`; text opens with the role."""
        if not self.tool_calls:
            pieces = stream_slices(self.content or "") if self.json else stream_pieces(self.content or "")
            opening: list[Delta] = [({"role": "assistant", "content": "", "refusal": None}, None)]
            return [*opening, *(({"content": piece}, None) for piece in pieces), ({}, self.finish_reason)]
        deltas: list[Delta] = []
        for position, call in enumerate(self.tool_calls):
            start = {
                "index": position,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            opening_delta = {"role": "assistant", "content": None, "refusal": None} if position == 0 else {}
            deltas.append(({**opening_delta, "tool_calls": [start]}, None))
            deltas += [
                ({"tool_calls": [{"index": position, "function": {"arguments": piece}}]}, None)
                for piece in stream_slices(call.arguments)
            ]
        deltas.append(({}, self.finish_reason))
        return deltas
