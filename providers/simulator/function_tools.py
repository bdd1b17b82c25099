"""Function tools: reading `tools` and `tool_choice` (chat and Responses shapes), and
deciding, as a plausible model would, which functions to call and with what arguments.

The decision, for `tool_choice` `auto`: answer in text once the conversation ends
with a tool's result; else call the tools the prompt names (all of them when
parallel calls are allowed), else the tool whose name and description share the
most words with the prompt, else answer in text. `required` (or a named function)
always calls: the named tool, else as `auto` would, else the first tool — leaving
out tools already called, so a forced loop moves on (to pydantic-ai's final_result,
say). `none` never calls.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from .errors import SimError, invalid_value, missing_parameter
from .json_bytes import dumps
from .markers import strip_markers
from .schema_instance import SchemaError, schema_instance
from .strict_schema import check_strict, invalid_schema

MODES: Final = ("none", "auto", "required")
_NAME: Final = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_WORD: Final = re.compile(r"[a-z]{4,}")
_CAMEL: Final = re.compile(r"([a-z0-9])([A-Z])")
_COMMON_WORDS: Final = frozenset({"with", "that", "this", "from", "what", "when", "which", "will", "your", "about"})


@dataclass(frozen=True, slots=True)
class FunctionTool:
    name: str
    description: str
    parameters: Mapping[str, Any] | None
    param: str  # where its parameters sit in the request, for errors

    def arguments(self, *, seed: str, topic: str) -> str:
        """JSON arguments valid against the parameters schema, seeded by the request."""
        if self.parameters is None:
            return "{}"
        try:
            return dumps(schema_instance(self.parameters, seed=f"{seed}\n{self.name}", topic=topic)).decode()
        except SchemaError as error:
            raise invalid_schema(
                f"function '{self.name}'", error, param=self.param, code="invalid_function_parameters"
            ) from None

    def words(self) -> set[str]:
        return _words(_CAMEL.sub(r"\1 \2", self.name).replace("_", " ") + " " + self.description)


@dataclass(frozen=True, slots=True)
class ToolChoice:
    mode: Literal["none", "auto", "required"] = "auto"
    allowed: tuple[str, ...] | None = None  # the functions it may call; None: any
    named: bool = False  # one function forced by name: OpenAI then finishes with "stop"


@dataclass(frozen=True, slots=True)
class Conversation:
    """What the decision needs of the messages so far."""

    user_text: str  # the last user message
    ends_with_tool_result: bool
    called: frozenset[str]  # functions the assistant called earlier


def new_call_id() -> str:
    return "call_" + os.urandom(12).hex()


def chat_tools(value: Any) -> list[FunctionTool]:
    """`tools: [{type: function, function: {name, description, parameters, strict}}]`."""
    tools: list[FunctionTool] = []
    for index, tool in enumerate(_tool_list(value)):
        if tool.get("type") != "function":
            continue  # custom tools are never called here
        function = tool.get("function")
        if not isinstance(function, dict):
            raise missing_parameter(f"tools[{index}].function")
        tools.append(_function(function, f"tools[{index}].function"))
    return tools


def responses_tools(value: Any) -> list[FunctionTool]:
    """`tools: [{type: function, name, description, parameters, strict}, …]`; other tool types are left alone."""
    return [
        _function(tool, f"tools[{index}]")
        for index, tool in enumerate(_tool_list(value))
        if tool.get("type") == "function"
    ]


def read_tool_choice(value: Any, tools: Sequence[FunctionTool], *, any_tools: bool) -> ToolChoice:
    """`tool_choice` in either API's shape: a mode, a named function, or `allowed_tools`.
    `any_tools`: the request offers tools of any type (Responses has hosted ones too)."""
    if value is None:
        return ToolChoice("auto" if tools else "none")
    if isinstance(value, str):
        if value not in MODES:
            raise invalid_value("tool_choice", value, MODES)
        choice = ToolChoice(value)
    elif isinstance(value, dict) and value.get("type") == "function":
        function = value.get("function")
        name = function.get("name") if isinstance(function, dict) else value.get("name")
        if not isinstance(name, str):
            raise missing_parameter("tool_choice.function.name" if "function" in value else "tool_choice.name")
        choice = ToolChoice("required", (name,), named=True)
    elif isinstance(value, dict) and value.get("type") == "allowed_tools":
        # Chat nests the list in `allowed_tools`; Responses puts it on the choice itself.
        spec = value.get("allowed_tools") if isinstance(value.get("allowed_tools"), dict) else value
        mode = spec.get("mode")
        if mode not in ("auto", "required"):
            raise invalid_value("tool_choice.mode", mode, ("auto", "required"))
        entries = spec.get("tools") if isinstance(spec.get("tools"), list) else []
        names = tuple(_entry_name(entry) for entry in entries if isinstance(entry, dict))
        choice = ToolChoice(mode, tuple(name for name in names if name))
    elif isinstance(value, dict) and isinstance(value.get("type"), str):
        return ToolChoice("none")  # a hosted tool (image_generation, web_search …) is forced: no function call
    else:
        raise SimError(
            400,
            "Invalid type for 'tool_choice': expected one of 'none', 'auto', 'required', or an object naming a tool.",
            param="tool_choice",
            code="invalid_type",
        )
    known = {tool.name for tool in tools}
    if choice.mode == "required" and not any_tools:
        raise SimError(
            400,
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            param="tool_choice",
        )
    for name in choice.allowed or ():
        if name not in known:
            raise SimError(400, f"Tool choice '{name}' not found in 'tools' parameter.", param="tool_choice")
    return choice


def choose_calls(
    tools: Sequence[FunctionTool], choice: ToolChoice, conversation: Conversation, *, parallel: bool
) -> list[FunctionTool]:
    """The functions to call now, in order; none means answer in text."""
    offered = [tool for tool in tools if choice.allowed is None or tool.name in choice.allowed]
    if choice.mode == "none" or not offered:
        return []
    if choice.mode == "auto" and conversation.ends_with_tool_result:
        return []
    if choice.mode == "required":
        offered = [tool for tool in offered if tool.name not in conversation.called] or offered
    text = strip_markers(conversation.user_text).lower()
    named = [tool for tool in offered if re.search(rf"\b{re.escape(tool.name.lower())}\b", text)]
    if named:
        return named if parallel else named[:1]
    prompt_words = _words(text)
    scores = [_overlap(tool.words(), prompt_words) for tool in offered]
    if max(scores) > 0:
        return [offered[scores.index(max(scores))]]
    return [offered[0]] if choice.mode == "required" else []


def _tool_list(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SimError(400, "Invalid type for 'tools': expected an array.", param="tools", code="invalid_type")
    for index, tool in enumerate(value):
        if not isinstance(tool, dict):
            where = f"tools[{index}]"
            raise SimError(400, f"Invalid type for '{where}': expected an object.", param=where, code="invalid_type")
    return value


def _function(spec: dict[str, Any], param: str) -> FunctionTool:
    name = spec.get("name")
    if name is None:
        raise missing_parameter(f"{param}.name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise SimError(
            400,
            f"Invalid '{param}.name': string does not match pattern. Expected a string that matches the pattern "
            "'^[a-zA-Z0-9_-]{1,64}$'.",
            param=f"{param}.name",
            code="invalid_value",
        )
    parameters = spec.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise SimError(400, f"Invalid type for '{param}.parameters': expected an object.", param=f"{param}.parameters")
    if spec.get("strict") is True and parameters is not None:
        try:
            check_strict(parameters, whole_object=False)
        except SchemaError as error:
            raise invalid_schema(
                f"function '{name}'", error, param=f"{param}.parameters", code="invalid_function_parameters"
            ) from None
    description = spec.get("description")
    return FunctionTool(name, description if isinstance(description, str) else "", parameters, f"{param}.parameters")


def _entry_name(entry: dict[str, Any]) -> str | None:
    function = entry.get("function")
    name = function.get("name") if isinstance(function, dict) else entry.get("name")
    return name if isinstance(name, str) else None


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower())) - _COMMON_WORDS


def _overlap(tool_words: set[str], prompt_words: set[str]) -> int:
    """Words shared, counting `forecast`/`forecasts` and `search`/`searching` as one (same first five letters)."""
    stems = {word[:5] for word in prompt_words}
    return sum(1 for word in tool_words if word[:5] in stems)
