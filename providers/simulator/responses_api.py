"""`POST /v1/responses`: a mainline-model answer, optionally with the
`image_generation` tool, plain or streamed as Responses events. Each response is
kept (unless `store: false`) for follow-ups and `GET /v1/responses/{id}`."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Final

from providers.image_tokens import image_input_tokens, text_tokens

from .api_call import ApiCall
from .canned_text import reply_text, stream_pieces
from .errors import SimError, missing_parameter
from .image_inputs import decode_data_url, read_image
from .image_settings import DEFAULT_MODEL, PARTIAL_IMAGE_TOKENS, ImageSettings, resolve_image_settings
from .images import ImageCache
from .json_bytes import IMAGE_PLACEHOLDER, dumps_with_image
from .markers import strip_markers
from .replies import BodyReply, Reply, StreamReply
from .response_store import ResponseStore, StoredResponse, input_items
from .sse import named_event
from .stored_responses_api import check_continuation
from .usage import image_tool_usage, responses_usage

IMAGE_MODEL_PREFIXES: Final = ("gpt-image", "chatgpt-image", "dall-e")


@dataclass(frozen=True, slots=True)
class _Input:
    texts: list[str]
    last_user_text: str
    images: list[bytes]


async def create_response(call: ApiCall, images: ImageCache, store: ResponseStore) -> Reply:
    model = call.model
    if not model:
        raise missing_parameter("model")
    if model.startswith(IMAGE_MODEL_PREFIXES):
        # Image models only run behind the image_generation tool here.
        raise SimError(400, f"The requested model '{model}' is not supported with the Responses API.", param="model")
    conversation = check_continuation(call, store)
    fields = call.fields
    given = _read_input(fields.get("input"))
    instructions = fields.get("instructions") if isinstance(fields.get("instructions"), str) else None
    input_image_tokens = sum(_image_tokens(data, index) for index, data in enumerate(given.images))
    text = reply_text(model, given.last_user_text)
    input_tokens = sum(text_tokens(each) for each in given.texts) + text_tokens(instructions or "")
    stream = fields.get("stream") is True
    background = fields.get("background") is True  # finished at once here: only `cancel` tells the difference
    draft = _Draft(
        head=_head(fields, model, instructions, conversation),
        message_id="msg_sim" + os.urandom(12).hex(),
        text=text,
        usage=responses_usage(input_tokens + input_image_tokens, text_tokens(text)),
    )
    tool = _image_tool(fields)
    image_b64 = b""
    if tool is not None:
        settings = resolve_image_settings(tool, model=tool.get("model") or DEFAULT_MODEL, size_param="tools")
        image_b64 = (await images.get(settings.spec)).b64
        prompt = strip_markers(given.last_user_text) or "An image."
        partials = settings.partial_images if stream else 0
        output_tokens = settings.output_tokens_per_image() + PARTIAL_IMAGE_TOKENS * partials
        draft.image = _ImageCall("ig_sim" + os.urandom(12).hex(), settings, prompt, partials)
        draft.tool_usage = image_tool_usage(text_tokens(prompt), input_image_tokens, output_tokens)
    if fields.get("store", True) is not False:
        kept = StoredResponse(draft.response("completed"), image_b64, input_items(fields.get("input")), background)
        store.keep(call.upstream, kept)
    if stream:
        return StreamReply(_events(draft, image_b64))
    return BodyReply(200, dumps_with_image(draft.response("completed"), image_b64))


@dataclass(slots=True)
class _ImageCall:
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


@dataclass(slots=True)
class _Draft:
    """The pieces of one Response, assembled whole or as a sequence of events."""

    head: dict[str, Any]
    message_id: str
    text: str
    usage: dict[str, Any]
    image: _ImageCall | None = None
    tool_usage: dict[str, Any] | None = None

    def message(self, status: str) -> dict[str, Any]:
        content = [self.part()] if status == "completed" else []
        return {"id": self.message_id, "type": "message", "status": status, "role": "assistant", "content": content}

    def part(self, text: str | None = None) -> dict[str, Any]:
        return {"type": "output_text", "text": self.text if text is None else text, "annotations": [], "logprobs": []}

    def response(self, status: str) -> dict[str, Any]:
        if status != "completed":
            return {**self.head, "status": status, "output": [], "usage": None}
        output = ([self.image.item("completed")] if self.image else []) + [self.message("completed")]
        finished = {
            **self.head,
            "status": status,
            "completed_at": int(time.time()),
            "output": output,
            "usage": self.usage,
        }
        if self.tool_usage is not None:
            finished["tool_usage"] = self.tool_usage
        return finished


def _events(draft: _Draft, image_b64: bytes) -> list[bytes]:
    """The event sequence of a streamed Response (contract §5), numbered in order."""
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": draft.response("in_progress")},
        {"type": "response.in_progress", "response": draft.response("in_progress")},
    ]
    output_index = 0
    if draft.image is not None:
        image = draft.image
        at = {"item_id": image.item_id, "output_index": output_index}
        events.append(
            {"type": "response.output_item.added", "output_index": output_index, "item": image.item("in_progress")}
        )
        events.append({"type": "response.image_generation_call.in_progress", **at})
        events.append({"type": "response.image_generation_call.generating", **at})
        echo = {key: image.item("completed")[key] for key in ("background", "output_format", "quality", "size")}
        events += [
            {
                "type": "response.image_generation_call.partial_image",
                **at,
                "partial_image_index": index,
                "partial_image_b64": IMAGE_PLACEHOLDER,
                **echo,
            }
            for index in range(image.partial_images)
        ]
        events.append({"type": "response.image_generation_call.completed", **at})
        events.append(
            {"type": "response.output_item.done", "output_index": output_index, "item": image.item("completed")}
        )
        output_index += 1
    at = {"item_id": draft.message_id, "output_index": output_index, "content_index": 0}
    events.append(
        {"type": "response.output_item.added", "output_index": output_index, "item": draft.message("in_progress")}
    )
    events.append({"type": "response.content_part.added", **at, "part": draft.part("")})
    events += [
        {"type": "response.output_text.delta", **at, "delta": piece, "logprobs": []}
        for piece in stream_pieces(draft.text)
    ]
    events.append({"type": "response.output_text.done", **at, "text": draft.text, "logprobs": []})
    events.append({"type": "response.content_part.done", **at, "part": draft.part()})
    events.append(
        {"type": "response.output_item.done", "output_index": output_index, "item": draft.message("completed")}
    )
    events.append({"type": "response.completed", "response": draft.response("completed")})
    return [
        named_event(event["type"], dumps_with_image({**event, "sequence_number": number}, image_b64))
        for number, event in enumerate(events)
    ]


def _head(
    fields: dict[str, Any], model: str, instructions: str | None, conversation: dict[str, str] | None
) -> dict[str, Any]:
    """The fields of a Response that do not change while it runs."""
    return {
        "id": "resp_sim" + os.urandom(12).hex(),
        "object": "response",
        "created_at": int(time.time()),
        "model": model,
        "background": fields.get("background") is True,
        "conversation": conversation,
        "error": None,
        "incomplete_details": None,
        "instructions": instructions,
        "max_output_tokens": fields.get("max_output_tokens"),
        "metadata": fields.get("metadata") or {},
        "parallel_tool_calls": True,
        "previous_response_id": fields.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": fields.get("store", True),
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": fields.get("tool_choice") or "auto",
        "tools": fields.get("tools") or [],
        "top_p": 1.0,
        "truncation": "disabled",
        "user": None,
    }


def _image_tool(fields: dict[str, Any]) -> dict[str, Any] | None:
    """The image_generation tool, if the request offers it and does not forbid tools."""
    if fields.get("tool_choice") == "none":
        return None
    tools = fields.get("tools") or []
    if not isinstance(tools, list):
        raise SimError(400, "Invalid type for 'tools': expected an array.", param="tools", code="invalid_type")
    return next((tool for tool in tools if isinstance(tool, dict) and tool.get("type") == "image_generation"), None)


def _image_tokens(data: bytes, index: int) -> int:
    found = read_image(data, param="input", label=f"input image {index + 1}")
    return image_input_tokens(found.width, found.height)


def _read_input(value: Any) -> _Input:
    """Texts and data-URL images of `input` (a string, or a list of messages/items)."""
    if isinstance(value, str):
        return _Input([value], value, [])
    if value is None:
        return _Input([], "", [])
    if not isinstance(value, list):
        raise SimError(
            400, "Invalid type for 'input': expected a string or an array.", param="input", code="invalid_type"
        )
    texts: list[str] = []
    images: list[bytes] = []
    last_user_text = ""
    for item in value:
        if not isinstance(item, dict):
            continue
        content = item.get("content")
        parts = [{"type": "input_text", "text": content}] if isinstance(content, str) else content or []
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
    return _Input(texts, last_user_text, images)
