"""The body fields Tollgate itself reads, and the JSON type each must have.

Checked once, at intake, so that nothing after it (routing, policies, pricing,
the ledger, providers) can meet a field of the wrong type: such a request is a 400
naming the field, in OpenAI's words. Fields Tollgate does not read pass through
unchecked, for the upstream to judge; `null` counts as not given, as OpenAI takes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from providers.types import Surface

from ..errors import InvalidRequest

MAX_INT32 = 2**31 - 1  # bounds every number read, so estimates stay within the ledger's integers


@dataclass(frozen=True, slots=True)
class JsonType:
    expected: str  # as OpenAI's errors say it: "a string", "an array of objects"
    types: tuple[type, ...]  # exact: orjson gives bool for true, never an int
    within: tuple[int, int] | None = None  # for numbers
    items: JsonType | None = None  # every item of an array
    fields: Mapping[str, JsonType] = field(default_factory=dict)  # an object's fields that are read


STRING = JsonType("a string", (str,))
BOOLEAN = JsonType("a boolean", (bool,))
OBJECT = JsonType("an object", (dict,))
ARRAY_OF_OBJECTS = JsonType("an array of objects", (list,), items=OBJECT)
STRING_OR_ARRAY = JsonType("a string or an array", (str, list))
STRING_OR_ARRAY_OF_OBJECTS = JsonType("a string or an array of objects", (str, list), items=OBJECT)
COUNT = JsonType(f"an integer from 0 to {MAX_INT32}", (int,), within=(0, MAX_INT32))
TOKEN_LIMIT = JsonType(f"an integer from 1 to {MAX_INT32}", (int,), within=(1, MAX_INT32))

# The settings of an image request, and of the Responses `image_generation` tool.
IMAGE_SETTINGS: Mapping[str, JsonType] = {
    "model": STRING,
    "size": STRING,
    "quality": STRING,
    "output_format": STRING,
    "background": STRING,
    "n": COUNT,
    "output_compression": COUNT,
    "partial_images": COUNT,
}
INTEGER_SETTINGS = frozenset(name for name, kind in IMAGE_SETTINGS.items() if kind.within is not None)

_EVERY_SURFACE: Mapping[str, JsonType] = {
    "model": STRING,
    "stream": BOOLEAN,
    "metadata": JsonType("an object", (dict,), fields={"prompt_version": STRING}),
}
READ_FIELDS: Mapping[Surface, Mapping[str, JsonType]] = {
    Surface.IMAGES_GENERATE: {**_EVERY_SURFACE, **IMAGE_SETTINGS, "prompt": STRING},
    Surface.IMAGES_EDIT: {**_EVERY_SURFACE, **IMAGE_SETTINGS, "prompt": STRING, "images": ARRAY_OF_OBJECTS},
    Surface.RESPONSES: {
        **_EVERY_SURFACE,
        "input": STRING_OR_ARRAY_OF_OBJECTS,
        "instructions": STRING,
        "max_output_tokens": TOKEN_LIMIT,
        "tools": ARRAY_OF_OBJECTS,
    },
    Surface.CHAT: {
        **_EVERY_SURFACE,
        "messages": ARRAY_OF_OBJECTS,
        "stream_options": JsonType("an object", (dict,), fields={"include_usage": BOOLEAN}),
        "max_tokens": TOKEN_LIMIT,
        "max_completion_tokens": TOKEN_LIMIT,
    },
    Surface.EMBEDDINGS: {**_EVERY_SURFACE, "input": STRING_OR_ARRAY},
}
# A multipart edit's form: text, read as numbers and flags where those are expected.
FORM_FIELDS: Mapping[str, JsonType] = {"stream": BOOLEAN, **IMAGE_SETTINGS, "prompt": STRING}


def check_fields(fields: Mapping[str, Any], expected: Mapping[str, JsonType], *, location: str = "") -> None:
    """Raise InvalidRequest for the first field of `expected` that `fields` gives with the wrong type."""
    for name, kind in expected.items():
        value = fields.get(name)
        if value is not None:
            _check(value, kind, f"{location}{name}")


def _check(value: Any, kind: JsonType, path: str) -> None:
    if type(value) not in kind.types:
        raise _invalid(path, kind, value, code="invalid_type")
    if kind.within is not None and not kind.within[0] <= value <= kind.within[1]:
        raise _invalid(path, kind, value, code="invalid_value")
    if kind.items is not None and isinstance(value, list):
        for index, item in enumerate(value):
            _check(item, kind.items, f"{path}[{index}]")
    if kind.fields and isinstance(value, dict):
        check_fields(value, kind.fields, location=f"{path}.")


def _invalid(path: str, kind: JsonType, value: Any, *, code: str) -> InvalidRequest:
    message = f"Invalid '{path}': expected {kind.expected}, but got {_shown(value)}."
    return InvalidRequest(message, param=path, code=code)


_JSON_KINDS = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number"}


def json_kind(value: Any) -> str:
    """What JSON calls the value's type, as an error names it."""
    return _JSON_KINDS.get(type(value), "a number" if isinstance(value, float) else "null")


def _shown(value: Any) -> str:
    """The value as JSON would write it; a container only by its kind (it may be megabytes)."""
    if isinstance(value, dict | list):
        return json_kind(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {value[:40]!r}" + ("…" if len(value) > 40 else "")
    return repr(value) if value is not None else "null"
