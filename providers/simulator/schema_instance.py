"""An instance of a JSON Schema: the JSON a model answers with under structured outputs.

It covers what OpenAI's strict structured outputs accept — objects with `properties`,
arrays with `items`, strings (`enum`, `format`, `pattern`, lengths), numbers and integers
(bounds, `multipleOf`), booleans, null, `anyOf`, `$ref` into `$defs`, nullable
`type` lists — plus the looser keywords non-strict schemas use (`oneOf`, `allOf`,
`const`, `additionalProperties` maps, `prefixItems`). Values are drawn from a
generator seeded by the request, so the same prompt gets the same answer, and are
chosen by property name where one suggests a kind (`age`, `city`, `email` …).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final

from .plausible_values import formatted_text, plausible_range, plausible_text, topic_words
from .regex_instance import PatternError, regex_instance

# Past this nesting, optional parts (nullable branches, optional properties, array
# items beyond minItems) are left out, so recursive schemas end.
_OPTIONAL_DEPTH: Final = 4
# A schema that still recurses this deep has no way out (a required self-reference).
_MAX_DEPTH: Final = 48

Context = tuple[str, ...]


class SchemaError(ValueError):
    """A schema no instance can be made of. `context` is where, as OpenAI names it:
    the keys leading there, e.g. `('properties', 'address')`; None for the schema as a whole."""

    def __init__(self, problem: str, context: Context | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.context = context


def schema_instance(schema: Any, *, seed: str, topic: str = "") -> Any:
    """A value valid against `schema`; the same `seed` gives the same value.

    `topic` (the prompt) lends its words to free-text fields.
    """
    if not isinstance(schema, Mapping):
        raise SchemaError("schema must be a JSON object", ())
    words = topic_words(topic)
    return _Instancer(schema, random.Random(seed), words).value(schema, (), 0, "")


class _Instancer:
    def __init__(self, root: Mapping[str, Any], rng: random.Random, words: list[str]) -> None:
        self.root = root
        self.rng = rng
        self.words = words

    def value(self, schema: Any, context: Context, depth: int, name: str) -> Any:
        if depth > _MAX_DEPTH:
            raise SchemaError("schema recurses without end (a required property refers back to itself)", context)
        if schema is True or schema == {}:
            return plausible_text(name, self.rng, self.words)
        if not isinstance(schema, Mapping):
            raise SchemaError("every subschema must be a JSON object", context)
        if isinstance(schema.get("$ref"), str):
            target = self.resolve(schema["$ref"], context)
            siblings = {key: each for key, each in schema.items() if key != "$ref"}
            return self.value({**target, **siblings}, context, depth + 1, name)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self.rng.choice(schema["enum"])
        for keyword in ("anyOf", "oneOf"):
            variants = schema.get(keyword)
            if isinstance(variants, list) and variants:
                index = self.pick_variant(variants, depth)
                return self.value(variants[index], (*context, keyword, str(index)), depth + 1, name)
        if isinstance(schema.get("allOf"), list):
            merged = self.merge(schema, context)
            return self.value(merged, context, depth + 1, name)
        kind = self.kind(schema, depth)
        if kind == "object":
            return self.object(schema, context, depth)
        if kind == "array":
            return self.array(schema, context, depth, name)
        if kind in ("number", "integer"):
            return _number(schema, name, self.rng, integer=kind == "integer", context=context)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        if kind == "string":
            return self.string(schema, context, name)
        raise SchemaError(f"unknown type '{kind}'", context)

    def resolve(self, ref: str, context: Context) -> Mapping[str, Any]:
        """`#`, `#/$defs/Name`, or any JSON pointer into the root schema."""
        node: Any = self.root
        parts = ref.split("/")
        if parts[0] != "#":
            raise SchemaError(f"reference '{ref}' is not local; only '#/…' references are supported", context)
        for part in parts[1:]:
            key = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                raise SchemaError(f"reference '{ref}' can't be resolved", context)
        if not isinstance(node, Mapping):
            raise SchemaError(f"reference '{ref}' does not name a schema", context)
        return node

    def pick_variant(self, variants: list[Any], depth: int) -> int:
        """The first variant that is not null; deep down, the cheapest one, so recursion ends."""
        if depth > _OPTIONAL_DEPTH:
            ranked = sorted(range(len(variants)), key=lambda index: _weight(variants[index]))
            return ranked[0]
        return next((index for index, each in enumerate(variants) if _weight(each) > 0), 0)

    def merge(self, schema: Mapping[str, Any], context: Context) -> dict[str, Any]:
        """`allOf` as one schema: later parts add keywords; properties and required add up."""
        merged: dict[str, Any] = {key: each for key, each in schema.items() if key != "allOf"}
        for part in schema["allOf"]:
            part = self.resolve(part["$ref"], context) if isinstance(part, Mapping) and "$ref" in part else part
            if not isinstance(part, Mapping):
                raise SchemaError("every 'allOf' entry must be a JSON object", context)
            properties = {**_mapping(merged.get("properties")), **_mapping(part.get("properties"))}
            required = [*_list(merged.get("required")), *_list(part.get("required"))]
            merged.update(part)
            if properties:
                merged["properties"], merged["required"] = properties, required
        return merged

    def kind(self, schema: Mapping[str, Any], depth: int) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            real = [each for each in kind if each != "null"]
            return "null" if not real or ("null" in kind and depth > _OPTIONAL_DEPTH) else str(real[0])
        if isinstance(kind, str):
            return kind
        if "properties" in schema or "additionalProperties" in schema:
            return "object"
        return "array" if "items" in schema or "prefixItems" in schema else "string"

    def object(self, schema: Mapping[str, Any], context: Context, depth: int) -> dict[str, Any]:
        properties = _mapping(schema.get("properties"))
        required = {key for key in _list(schema.get("required")) if isinstance(key, str)}
        made: dict[str, Any] = {}
        for key, subschema in properties.items():
            if depth > _OPTIONAL_DEPTH and key not in required:
                continue
            made[key] = self.value(subschema, (*context, "properties", key), depth + 1, key)
        extra = schema.get("additionalProperties")
        if not properties and isinstance(extra, Mapping):
            # A map (`dict[str, X]`): a couple of entries keyed by words of the prompt.
            wanted = max(_whole(schema, "minProperties", 0), 0 if depth > _OPTIONAL_DEPTH else 2)
            for index in range(wanted):
                key = f"{self.rng.choice(self.words)}_{index + 1}"
                made[key] = self.value(extra, (*context, "additionalProperties"), depth + 1, key)
        return made

    def array(self, schema: Mapping[str, Any], context: Context, depth: int, name: str) -> list[Any]:
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):
            return [
                self.value(each, (*context, "prefixItems", str(index)), depth + 1, name)
                for index, each in enumerate(prefix)
            ]
        fewest = _whole(schema, "minItems", 0)
        most = _whole(schema, "maxItems", max(fewest, 3))
        if fewest > most:
            raise SchemaError(f"minItems {fewest} is more than maxItems {most}", context)
        count = fewest if depth > _OPTIONAL_DEPTH else min(max(self.rng.randint(1, 3), fewest), most)
        items = schema.get("items", {})
        singular = name[:-1] if name.endswith("s") else name
        return [self.value(items, (*context, "items"), depth + 1, singular) for _ in range(count)]

    def string(self, schema: Mapping[str, Any], context: Context, name: str) -> str:
        shortest, longest = _whole(schema, "minLength", 0), _whole(schema, "maxLength", None)
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            try:
                return regex_instance(pattern, self.rng, shortest=shortest, longest=longest)
            except PatternError as error:
                raise SchemaError(str(error), context) from None
        text = formatted_text(schema.get("format"), self.rng, self.words) or plausible_text(name, self.rng, self.words)
        while len(text) < shortest:
            text += " " + self.rng.choice(self.words)
        if longest is not None and len(text) > longest:
            text = text[:longest].rstrip() if longest >= shortest else text[:longest]
        return text.ljust(shortest, "x")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _whole(schema: Mapping[str, Any], key: str, default: Any) -> Any:
    """A non-negative integer keyword (`minItems` …), or `default` where it is absent or not one."""
    value = schema.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def _weight(schema: Any) -> int:
    """How much a variant costs to make: null 0, scalars 1, containers 2 (refs count as containers)."""
    if not isinstance(schema, Mapping):
        return 1
    kind = schema.get("type")
    if kind == "null":
        return 0
    if kind in ("object", "array") or "$ref" in schema or "properties" in schema or "items" in schema:
        return 2
    return 1


def _number(schema: Mapping[str, Any], name: str, rng: random.Random, *, integer: bool, context: Context) -> Any:
    """A number inside the schema's bounds, and inside the range its name suggests when that fits."""
    low = _bound(schema, "minimum", "exclusiveMinimum", max)
    high = _bound(schema, "maximum", "exclusiveMaximum", min)
    hinted_low, hinted_high = plausible_range(name)
    chosen_low = hinted_low if low is None else max(low[0], hinted_low)
    chosen_high = hinted_high if high is None else min(high[0], hinted_high)
    if chosen_low > chosen_high:  # the hint's range lies outside the bounds: use the bounds
        chosen_low = low[0] if low is not None else chosen_high - 100
        chosen_high = high[0] if high is not None else chosen_low + 100
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and not isinstance(step, bool) and step > 0:
        exact = Decimal(str(step))
        first, last = _multiples(exact, chosen_low, chosen_high, low, high)
        if first > last:  # none in the plausible range: any inside the bounds will do
            wider_low = low[0] if low is not None else chosen_low - 100 * step
            first, last = _multiples(
                exact, wider_low, high[0] if high is not None else wider_low + 100 * step, low, high
            )
        if first > last:
            raise SchemaError(f"no multiple of {step} lies between the bounds", context)
        product = exact * rng.randint(first, last)
        if integer or product == product.to_integral_value():
            return int(product)
        # Prefer a multiple that binary floats also divide exactly, as float-based validators check it.
        exact_in_floats = (exact * n for n in (rng.randint(first, last) for _ in range(16)))
        return float(next((each for each in exact_in_floats if (float(each) / step).is_integer()), product))
    if integer:
        first = math.ceil(chosen_low) + int(low is not None and low[1] and math.ceil(chosen_low) == low[0])
        last = math.floor(chosen_high) - int(high is not None and high[1] and math.floor(chosen_high) == high[0])
        if first > last:
            raise SchemaError("no integer lies between the bounds", context)
        return rng.randint(first, last)
    drawn = round(rng.uniform(chosen_low, chosen_high), 2)
    too_low = low is not None and (drawn < low[0] or (low[1] and drawn == low[0]))
    too_high = high is not None and (drawn > high[0] or (high[1] and drawn == high[0]))
    return (chosen_low + chosen_high) / 2 if too_low or too_high else drawn


def _multiples(
    step: Decimal, lowest: float, highest: float, low: tuple[float, bool] | None, high: tuple[float, bool] | None
) -> tuple[int, int]:
    """The first and last n with n × step in [lowest, highest], and not on an exclusive bound."""
    first, last = math.ceil(Decimal(str(lowest)) / step), math.floor(Decimal(str(highest)) / step)
    first += int(low is not None and low[1] and first * step == Decimal(str(low[0])))
    last -= int(high is not None and high[1] and last * step == Decimal(str(high[0])))
    return first, last


def _bound(
    schema: Mapping[str, Any], inclusive: str, exclusive: str, tighter: Callable[..., Any]
) -> tuple[float, bool] | None:
    """The tighter of a schema's inclusive and exclusive bound: (value, is exclusive)."""
    found = [
        (float(schema[key]), key == exclusive)
        for key in (inclusive, exclusive)
        if isinstance(schema.get(key), int | float) and not isinstance(schema.get(key), bool)
    ]
    if not found:
        return None
    return tighter(found, key=lambda bound: (bound[0], bound[1] if tighter is max else not bound[1]))
