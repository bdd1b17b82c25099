"""`POST /v1/chat/completions`, plain and streamed: text, `n` choices, function calls
(`tools`, `tool_choice`) and structured outputs (`response_format`)."""

from __future__ import annotations

import os
import time
from typing import Any, Final

from providers.image_tokens import text_tokens

from .api_call import ApiCall
from .canned_text import reply_text
from .chat_choices import ChatChoice, ToolCall
from .errors import SimError, missing_parameter
from .function_tools import (
    Conversation,
    FunctionTool,
    ToolChoice,
    chat_tools,
    choose_calls,
    new_call_id,
    read_tool_choice,
)
from .images import ImageCache
from .json_bytes import dumps
from .output_format import OutputFormat, chat_output_format
from .replies import BodyReply, Reply, StreamReply
from .sse import DONE, data_event
from .usage import chat_usage

MAX_CHOICES: Final = 128
_JSON_TYPES: Final = {str: "a string", float: "a decimal", bool: "a boolean", list: "an array", dict: "an object"}
_JSON_MODE_MESSAGE: Final = (
    "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'."
)


async def create_chat_completion(call: ApiCall, images: ImageCache) -> Reply:
    model = call.model
    if not model:
        raise missing_parameter("model")
    fields = call.fields
    messages = fields.get("messages")
    if not messages:
        raise missing_parameter("messages")
    if not isinstance(messages, list) or not all(isinstance(message, dict) for message in messages):
        raise SimError(
            400, "Invalid type for 'messages': expected an array of objects.", param="messages", code="invalid_type"
        )
    count = _choice_count(fields.get("n"))
    tools = chat_tools(fields.get("tools"))
    tool_choice = read_tool_choice(fields.get("tool_choice"), tools, any_tools=bool(fields.get("tools")))
    output = chat_output_format(fields.get("response_format"))
    texts = [_message_text(message) for message in messages]
    output.require_json_mention(texts, _JSON_MODE_MESSAGE, "messages")
    conversation = _conversation(messages, texts)
    calls = choose_calls(tools, tool_choice, conversation, parallel=fields.get("parallel_tool_calls") is not False)
    choices = [_choice(index, model, conversation.user_text, calls, tool_choice, output) for index in range(count)]
    # The tool definitions and the schema are part of the prompt the model reads.
    prompt_tokens = sum(text_tokens(each) for each in texts) + _json_tokens(fields.get("tools"), output.schema)
    usage = chat_usage(prompt_tokens, sum(choice.output_tokens() for choice in choices))
    head = {
        "id": "chatcmpl-sim" + os.urandom(12).hex(),
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_simulator",
        "service_tier": "default",
    }
    if fields.get("stream") is True:
        options = fields.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return StreamReply(_chunks(head, choices, usage if include_usage else None))
    body = {**head, "object": "chat.completion", "choices": [choice.whole() for choice in choices], "usage": usage}
    return BodyReply(200, dumps(body))


def _choice(
    index: int,
    model: str,
    user_text: str,
    calls: list[FunctionTool],
    tool_choice: ToolChoice,
    output: OutputFormat,
) -> ChatChoice:
    # Each choice its own seed: n choices are n different samples of one prompt.
    seed = f"{model}\n{user_text}\n{index}"
    if calls:
        made = tuple(ToolCall(new_call_id(), tool.name, tool.arguments(seed=seed, topic=user_text)) for tool in calls)
        # OpenAI ends a call forced by name with "stop", an elected one with "tool_calls".
        return ChatChoice(index, None, made, "stop" if tool_choice.named else "tool_calls")
    content = output.render(reply_text(model, user_text), seed=seed, topic=user_text)
    return ChatChoice(index, content, json=output.kind != "text")


def _choice_count(value: Any) -> int:
    if value is None:
        return 1
    if not isinstance(value, int) or isinstance(value, bool):
        got = _JSON_TYPES.get(type(value), "a value of another type")
        raise SimError(
            400, f"Invalid type for 'n': expected an integer, but got {got} instead.", param="n", code="invalid_type"
        )
    if not 1 <= value <= MAX_CHOICES:
        above = value > MAX_CHOICES
        expected = f"<= {MAX_CHOICES}" if above else ">= 1"
        raise SimError(
            400,
            f"Invalid 'n': integer {'above maximum' if above else 'below minimum'} value. "
            f"Expected a value {expected}, but got {value} instead.",
            param="n",
            code="integer_above_max_value" if above else "integer_below_min_value",
        )
    return value


def _message_text(message: dict[str, Any]) -> str:
    """The text a message puts before the model: its content, and the calls an assistant made."""
    content = message.get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = " ".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    else:
        text = ""
    calls = [function for function in _called_functions(message) if isinstance(function.get("arguments"), str)]
    return " ".join([text, *(function["arguments"] for function in calls)]) if calls else text


def _conversation(messages: list[dict[str, Any]], texts: list[str]) -> Conversation:
    users = [text for message, text in zip(messages, texts, strict=True) if message.get("role") == "user"]
    called = {function.get("name") for message in messages for function in _called_functions(message)}
    return Conversation(
        user_text=users[-1] if users else "",
        ends_with_tool_result=messages[-1].get("role") in ("tool", "function"),
        called=frozenset(name for name in called if isinstance(name, str)),
    )


def _called_functions(message: dict[str, Any]) -> list[dict[str, Any]]:
    calls = message.get("tool_calls")
    if message.get("role") != "assistant" or not isinstance(calls, list):
        return []
    return [call["function"] for call in calls if isinstance(call, dict) and isinstance(call.get("function"), dict)]


def _json_tokens(*values: Any) -> int:
    return sum(text_tokens(dumps(value).decode()) for value in values if value)


def _chunks(head: dict[str, Any], choices: list[ChatChoice], usage: dict[str, Any] | None) -> list[bytes]:
    """Each choice's deltas, in turn; then, if asked for, the usage chunk, then `[DONE]`."""
    chunk_head = {**head, "object": "chat.completion.chunk"}
    if usage is not None:
        # With include_usage, every chunk carries `usage: null` except the last.
        chunk_head["usage"] = None
    frames = [
        data_event(
            dumps(
                {
                    **chunk_head,
                    "choices": [
                        {"index": choice.index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                    ],
                }
            )
        )
        for choice in choices
        for delta, finish_reason in choice.deltas()
    ]
    if usage is not None:
        frames.append(data_event(dumps({**chunk_head, "choices": [], "usage": usage})))
    frames.append(DONE)
    return frames
