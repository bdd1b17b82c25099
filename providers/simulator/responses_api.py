"""`POST /v1/responses`: a mainline-model answer — text, structured output (`text.format`)
or function calls — optionally with the `image_generation` tool, plain or streamed as
Responses events. Each response is kept (unless `store: false`) for follow-ups and
`GET /v1/responses/{id}`."""

from __future__ import annotations

import os
import time
from typing import Any, Final

from providers.image_tokens import image_input_tokens, text_tokens

from .api_call import ApiCall
from .canned_text import reply_text
from .errors import SimError, missing_parameter
from .function_tools import choose_calls, new_call_id, read_tool_choice, responses_tools
from .image_inputs import read_image
from .image_settings import DEFAULT_MODEL, PARTIAL_IMAGE_TOKENS, resolve_image_settings
from .images import ImageCache
from .json_bytes import dumps, dumps_with_image
from .markers import strip_markers
from .output_format import responses_output_format
from .replies import BodyReply, Reply, StreamReply
from .response_store import ResponseStore, StoredResponse, input_items
from .responses_input import read_input
from .responses_output import FunctionCall, ImageCall, ResponseDraft, response_events
from .stored_responses_api import check_continuation
from .usage import image_tool_usage, responses_usage

IMAGE_MODEL_PREFIXES: Final = ("gpt-image", "chatgpt-image", "dall-e")
_JSON_MODE_MESSAGE: Final = (
    "Response input messages must contain the word 'json' in some form to use 'text.format' of type 'json_object'."
)


async def create_response(call: ApiCall, images: ImageCache, store: ResponseStore) -> Reply:
    model = call.model
    if not model:
        raise missing_parameter("model")
    if model.startswith(IMAGE_MODEL_PREFIXES):
        # Image models only run behind the image_generation tool here.
        raise SimError(400, f"The requested model '{model}' is not supported with the Responses API.", param="model")
    conversation = check_continuation(call, store)
    fields = call.fields
    given = read_input(fields.get("input"))
    instructions = fields.get("instructions") if isinstance(fields.get("instructions"), str) else None
    functions = responses_tools(fields.get("tools"))
    tool_choice = read_tool_choice(fields.get("tool_choice"), functions, any_tools=bool(fields.get("tools")))
    output = responses_output_format(fields.get("text"))
    output.require_json_mention([*given.texts, instructions or ""], _JSON_MODE_MESSAGE, "input")
    input_image_tokens = sum(_image_tokens(data, index) for index, data in enumerate(given.images))
    # Function definitions and the schema are part of the prompt the model reads (hosted
    # tools such as image_generation are not).
    definitions = [tool for tool in fields.get("tools") or [] if tool.get("type") == "function"]
    input_tokens = (
        sum(text_tokens(each) for each in given.texts)
        + text_tokens(instructions or "")
        + sum(text_tokens(dumps(value).decode()) for value in (definitions, output.schema) if value)
    )
    stream = fields.get("stream") is True
    background = fields.get("background") is True  # finished at once here: only `cancel` tells the difference
    seed = f"{model}\n{given.last_user_text}"
    draft = ResponseDraft(
        head=_head(fields, model, instructions, conversation),
        message_id="msg_sim" + os.urandom(12).hex(),
        text=output.render(reply_text(model, given.last_user_text), seed=seed, topic=given.last_user_text),
        usage={},
        json=output.kind != "text",
    )
    tool = _image_tool(fields)
    image_b64 = b""
    if tool is not None:
        settings = resolve_image_settings(tool, model=tool.get("model") or DEFAULT_MODEL, size_param="tools")
        image_b64 = (await images.get(settings.spec)).b64
        prompt = strip_markers(given.last_user_text) or "An image."
        partials = settings.partial_images if stream else 0
        output_tokens = settings.output_tokens_per_image() + PARTIAL_IMAGE_TOKENS * partials
        draft.image = ImageCall("ig_sim" + os.urandom(12).hex(), settings, prompt, partials)
        draft.tool_usage = image_tool_usage(text_tokens(prompt), input_image_tokens, output_tokens)
    else:
        parallel = fields.get("parallel_tool_calls") is not False
        chosen = choose_calls(functions, tool_choice, given.conversation(), parallel=parallel)
        draft.calls = [
            FunctionCall(
                "fc_sim" + os.urandom(12).hex(),
                new_call_id(),
                function.name,
                function.arguments(seed=seed, topic=given.last_user_text),
            )
            for function in chosen
        ]
    answered = [text_tokens(each.name) + text_tokens(each.arguments) for each in draft.calls]
    draft.usage = responses_usage(input_tokens + input_image_tokens, sum(answered) or text_tokens(draft.text))
    if fields.get("store", True) is not False:
        kept = StoredResponse(draft.response("completed"), image_b64, input_items(fields.get("input")), background)
        store.keep(call.upstream, kept)
    if stream:
        return StreamReply(response_events(draft, image_b64))
    return BodyReply(200, dumps_with_image(draft.response("completed"), image_b64))


def _head(
    fields: dict[str, Any], model: str, instructions: str | None, conversation: dict[str, str] | None
) -> dict[str, Any]:
    """The fields of a Response that do not change while it runs."""
    text = fields.get("text")
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
        "parallel_tool_calls": fields.get("parallel_tool_calls") is not False,
        "previous_response_id": fields.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": fields.get("store", True),
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, **(text if isinstance(text, dict) else {})},
        "tool_choice": fields.get("tool_choice") or "auto",
        "tools": fields.get("tools") or [],
        "top_p": 1.0,
        "truncation": "disabled",
        "user": None,
    }


def _image_tool(fields: dict[str, Any]) -> dict[str, Any] | None:
    """The image_generation tool, if the request offers it and does not forbid tools
    or force a function instead."""
    choice = fields.get("tool_choice")
    if choice == "none" or (isinstance(choice, dict) and choice.get("type") == "function"):
        return None
    tools = fields.get("tools") or []
    if not isinstance(tools, list):
        raise SimError(400, "Invalid type for 'tools': expected an array.", param="tools", code="invalid_type")
    return next((tool for tool in tools if isinstance(tool, dict) and tool.get("type") == "image_generation"), None)


def _image_tokens(data: bytes, index: int) -> int:
    found = read_image(data, param="input", label=f"input image {index + 1}")
    return image_input_tokens(found.width, found.height)
