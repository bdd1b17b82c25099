"""The form an answer's text must take: chat `response_format` and the Responses
`text.format` — plain text, any JSON object (JSON mode), or JSON valid against a
schema (structured outputs)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from .errors import SimError, invalid_value, missing_parameter
from .json_bytes import dumps
from .schema_instance import SchemaError, schema_instance
from .strict_schema import check_strict, invalid_schema

FORMAT_TYPES: Final = ("text", "json_object", "json_schema")
_NAME: Final = re.compile(r"[a-zA-Z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class OutputFormat:
    kind: Literal["text", "json_object", "json_schema"] = "text"
    name: str = ""
    schema: Mapping[str, Any] | None = None
    param: str = ""  # where the format sits in the request, for errors

    def render(self, reply: str, *, seed: str, topic: str) -> str:
        """The answer's text: `reply` as it is, or JSON the format allows, seeded by the request."""
        if self.kind == "text":
            return reply
        if self.schema is None:
            return dumps({"answer": reply}).decode()
        try:
            return dumps(schema_instance(self.schema, seed=seed, topic=topic)).decode()
        except SchemaError as error:
            raise invalid_schema(f"response_format '{self.name}'", error, param=self.param) from None

    def require_json_mention(self, texts: Iterable[str], message: str, param: str) -> None:
        """JSON mode refuses a conversation that never asks for JSON, as OpenAI does."""
        if self.kind == "json_object" and not any("json" in text.lower() for text in texts):
            raise SimError(400, message, param=param)


def chat_output_format(value: Any) -> OutputFormat:
    """`response_format`: `{type: json_schema, json_schema: {name, schema, strict}}` or `{type: json_object}`."""
    if value is None:
        return OutputFormat()
    kind = _format_type(value, "response_format")
    if kind != "json_schema":
        return OutputFormat(kind, param="response_format")
    spec = value.get("json_schema")
    if spec is None:
        raise missing_parameter("response_format.json_schema")
    if not isinstance(spec, dict):
        raise _wrong_type("response_format.json_schema", "an object")
    return _schema_format(spec, "response_format.json_schema", error_param="response_format")


def responses_output_format(text: Any) -> OutputFormat:
    """`text.format`: `{type: json_schema, name, schema, strict}` or `{type: json_object}`."""
    if text is None:
        return OutputFormat()
    if not isinstance(text, dict):
        raise _wrong_type("text", "an object")
    value = text.get("format")
    if value is None:
        return OutputFormat()
    kind = _format_type(value, "text.format")
    if kind != "json_schema":
        return OutputFormat(kind, param="text.format")
    return _schema_format(value, "text.format", error_param="text.format.schema")


def _format_type(value: Any, param: str) -> Literal["text", "json_object", "json_schema"]:
    if not isinstance(value, dict):
        raise _wrong_type(param, "an object")
    kind = value.get("type")
    if kind is None:
        raise missing_parameter(f"{param}.type")
    if kind not in FORMAT_TYPES:
        raise invalid_value(f"{param}.type", kind, FORMAT_TYPES)
    return kind


def _schema_format(spec: dict[str, Any], param: str, *, error_param: str) -> OutputFormat:
    name = spec.get("name")
    if name is None:
        raise missing_parameter(f"{param}.name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise SimError(
            400,
            f"Invalid '{param}.name': string does not match pattern. Expected a string that matches the "
            "pattern '^[a-zA-Z0-9_-]{1,64}$'.",
            param=f"{param}.name",
            code="invalid_value",
        )
    schema = spec.get("schema")
    if schema is not None and not isinstance(schema, dict):
        raise _wrong_type(f"{param}.schema", "an object")
    if spec.get("strict") is True:
        try:
            check_strict(schema, whole_object=True)
        except SchemaError as error:
            raise invalid_schema(f"response_format '{name}'", error, param=error_param) from None
    return OutputFormat("json_schema", name, schema, error_param)


def _wrong_type(param: str, expected: str) -> SimError:
    return SimError(400, f"Invalid type for '{param}': expected {expected}.", param=param, code="invalid_type")
