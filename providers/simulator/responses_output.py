"""The output of one Response — an image call, function calls or a message — assembled
whole, or as the sequence of events OpenAI streams it in."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .canned_text import stream_pieces, stream_slices
from .image_settings import ImageSettings
from .json_bytes import IMAGE_PLACEHOLDER, dumps_with_image
from .sse import named_event


@dataclass(slots=True)
class ImageCall:
    item_id: str
    settings: ImageSettings
    revised_prompt: str
    partial_images: int

    def item(self, status: str) -> dict[str, Any]:
        done = status == "completed"
        return {
            "id": self.item_id,
            "type": "image_generation_call",
            "status": status,
            "action": "generate",
            "background": self.settings.background,
            "output_format": self.settings.output_format,
            "quality": self.settings.quality,
            "size": self.settings.size,
            "revised_prompt": self.revised_prompt if done else None,
            "result": IMAGE_PLACEHOLDER if done else None,
        }


@dataclass(frozen=True, slots=True)
class FunctionCall:
    item_id: str
    call_id: str
    name: str
    arguments: str  # JSON text

    def item(self, status: str) -> dict[str, Any]:
        arguments = self.arguments if status == "completed" else ""
        return {
            "id": self.item_id,
            "type": "function_call",
            "status": status,
            "arguments": arguments,
            "call_id": self.call_id,
            "name": self.name,
        }


@dataclass(slots=True)
class ResponseDraft:
    """The pieces of one Response. With function calls it has no message, as OpenAI's has none."""

    head: dict[str, Any]
    message_id: str
    text: str
    usage: dict[str, Any]
    json: bool = False  # structured text streams in slices, prose in words
    image: ImageCall | None = None
    tool_usage: dict[str, Any] | None = None
    calls: list[FunctionCall] = field(default_factory=list)

    def message(self, status: str) -> dict[str, Any]:
        content = [self.part()] if status == "completed" else []
        return {"id": self.message_id, "type": "message", "status": status, "role": "assistant", "content": content}

    def part(self, text: str | None = None) -> dict[str, Any]:
        return {"type": "output_text", "text": self.text if text is None else text, "annotations": [], "logprobs": []}

    def response(self, status: str) -> dict[str, Any]:
        if status != "completed":
            return {**self.head, "status": status, "output": [], "usage": None}
        answer = [call.item("completed") for call in self.calls] or [self.message("completed")]
        finished = {
            **self.head,
            "status": status,
            "completed_at": int(time.time()),
            "output": ([self.image.item("completed")] if self.image else []) + answer,
            "usage": self.usage,
        }
        if self.tool_usage is not None:
            finished["tool_usage"] = self.tool_usage
        return finished


def response_events(draft: ResponseDraft, image_b64: bytes) -> list[bytes]:
    """The event sequence of a streamed Response, numbered in order."""
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": draft.response("in_progress")},
        {"type": "response.in_progress", "response": draft.response("in_progress")},
    ]
    if draft.image is not None:
        events += _image_events(draft.image, 0)
    first_index = 1 if draft.image is not None else 0
    for offset, call in enumerate(draft.calls):
        events += _call_events(call, first_index + offset)
    if not draft.calls:
        events += _message_events(draft, first_index)
    events.append({"type": "response.completed", "response": draft.response("completed")})
    return [
        named_event(event["type"], dumps_with_image({**event, "sequence_number": number}, image_b64))
        for number, event in enumerate(events)
    ]


def _image_events(image: ImageCall, output_index: int) -> list[dict[str, Any]]:
    at = {"item_id": image.item_id, "output_index": output_index}
    echo = {key: image.item("completed")[key] for key in ("background", "output_format", "quality", "size")}
    return [
        {"type": "response.output_item.added", "output_index": output_index, "item": image.item("in_progress")},
        {"type": "response.image_generation_call.in_progress", **at},
        {"type": "response.image_generation_call.generating", **at},
        *(
            {
                "type": "response.image_generation_call.partial_image",
                **at,
                "partial_image_index": index,
                "partial_image_b64": IMAGE_PLACEHOLDER,
                **echo,
            }
            for index in range(image.partial_images)
        ),
        {"type": "response.image_generation_call.completed", **at},
        {"type": "response.output_item.done", "output_index": output_index, "item": image.item("completed")},
    ]


def _call_events(call: FunctionCall, output_index: int) -> list[dict[str, Any]]:
    """The item opens with empty arguments, which then arrive in fragments."""
    at = {"item_id": call.item_id, "output_index": output_index}
    return [
        {"type": "response.output_item.added", "output_index": output_index, "item": call.item("in_progress")},
        *(
            {"type": "response.function_call_arguments.delta", **at, "delta": piece}
            for piece in stream_slices(call.arguments)
        ),
        {"type": "response.function_call_arguments.done", **at, "arguments": call.arguments},
        {"type": "response.output_item.done", "output_index": output_index, "item": call.item("completed")},
    ]


def _message_events(draft: ResponseDraft, output_index: int) -> list[dict[str, Any]]:
    at = {"item_id": draft.message_id, "output_index": output_index, "content_index": 0}
    pieces = stream_slices(draft.text) if draft.json else stream_pieces(draft.text)
    return [
        {"type": "response.output_item.added", "output_index": output_index, "item": draft.message("in_progress")},
        {"type": "response.content_part.added", **at, "part": draft.part("")},
        *({"type": "response.output_text.delta", **at, "delta": piece, "logprobs": []} for piece in pieces),
        {"type": "response.output_text.done", **at, "text": draft.text, "logprobs": []},
        {"type": "response.content_part.done", **at, "part": draft.part()},
        {"type": "response.output_item.done", "output_index": output_index, "item": draft.message("completed")},
    ]
