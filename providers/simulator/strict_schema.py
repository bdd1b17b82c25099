"""The rules OpenAI holds a schema to when it is `strict`, with OpenAI's wording.

A strict schema that breaks one is refused with a 400 before anything is made, so
a client that passes here is not refused by the real API for the same schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import SimError
from .schema_instance import Context, SchemaError


def check_strict(schema: Any, *, whole_object: bool) -> None:
    """Raise `SchemaError` at the first rule `schema` breaks. `whole_object`: the root
    must be an object (response formats; a function's parameters are always one)."""
    if not isinstance(schema, Mapping):
        raise SchemaError("schema must be a JSON object.", None)
    if whole_object and schema.get("type") != "object":
        got = schema.get("type")
        raise SchemaError(f"""schema must be a JSON Schema of 'type: "object"', got 'type: "{got}"'.""", None)
    _check(schema, ())


def invalid_schema(subject: str, error: SchemaError, *, param: str, code: str | None = None) -> SimError:
    """OpenAI's refusal of a schema; `subject` is e.g. `response_format 'Person'` or `function 'lookup'`."""
    where = f"In context={error.context!r}, " if error.context is not None else ""
    return SimError(400, f"Invalid schema for {subject}: {where}{error.problem}", param=param, code=code)


def _check(schema: Mapping[str, Any], context: Context) -> None:
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "object" in kinds:
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            raise SchemaError("object schema missing properties.", context)
        if schema.get("additionalProperties") is not False:
            raise SchemaError("'additionalProperties' is required to be supplied and to be false.", context)
        required = schema.get("required")
        missing = [key for key in properties if not isinstance(required, list) or key not in required]
        if missing:
            raise SchemaError(
                "'required' is required to be supplied and to be an array including every key in properties. "
                f"Missing '{missing[0]}'.",
                context,
            )
        for key, subschema in properties.items():
            _check_child(subschema, (*context, "properties", key))
    if "array" in kinds:
        if "items" not in schema:
            raise SchemaError("array schema missing items.", context)
        _check_child(schema["items"], (*context, "items"))
    for keyword in ("anyOf", "allOf"):
        variants = schema.get(keyword)
        for index, variant in enumerate(variants if isinstance(variants, list) else []):
            _check_child(variant, (*context, keyword, str(index)))
    for keyword in ("$defs", "definitions"):
        definitions = schema.get(keyword)
        for name, definition in (definitions if isinstance(definitions, Mapping) else {}).items():
            _check_child(definition, (*context, keyword, name))


def _check_child(schema: Any, context: Context) -> None:
    if not isinstance(schema, Mapping):
        raise SchemaError("every subschema must be a JSON object.", context)
    _check(schema, context)
