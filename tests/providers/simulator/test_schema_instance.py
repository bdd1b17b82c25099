"""Instances of JSON Schemas, checked by a real validator (jsonschema, with formats) and,
for schemas the SDK makes from pydantic models, by pydantic itself."""

from __future__ import annotations

import datetime
import enum
import re
import uuid
from typing import Any, Literal

import jsonschema
import orjson
import pytest
from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel, Field

from providers.simulator.schema_instance import SchemaError, schema_instance
from providers.simulator.strict_schema import check_strict

SEEDS = ("one", "two", "three", "four", "five")


def assert_valid(schema: dict[str, Any], value: Any) -> None:
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    validator.validate(value)


class Colour(enum.Enum):
    TEAL = "teal"
    AMBER = "amber"


class Address(BaseModel):
    street: str
    city: str
    postcode: str = Field(min_length=4, max_length=8)


class Section(BaseModel):
    heading: str
    subsections: list[Section]
    parent: Section | None


class Profile(BaseModel):
    """Everything the strict subset allows, as pydantic writes it."""

    name: str
    age: int
    id: uuid.UUID
    born: datetime.date
    updated_at: datetime.datetime
    home: Address
    previous_homes: list[Address] = Field(min_length=1, max_length=2)
    colour: Colour
    tier: Literal["free", "pro"]
    score: float = Field(ge=0, le=1)
    ratio: float = Field(gt=0, lt=0.5, multiple_of=0.05)
    lucky: int = Field(gt=10, le=11)
    nickname: str | None
    pet: Address | Colour | None
    outline: Section
    verified: bool
    ticket: str = Field(pattern=r"^TKT-\d{5}$")


SCHEMAS: list[dict[str, Any]] = [
    to_strict_json_schema(Profile),
    {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}}},
    {"type": ["string", "null"], "format": "email"},
    {"type": "string", "format": "ipv4"},
    {"type": "string", "format": "ipv6"},
    {"type": "string", "format": "hostname"},
    {"type": "number", "exclusiveMinimum": 5, "exclusiveMaximum": 5.5},
    {"type": "integer", "minimum": -3, "maximum": -3},
    {"type": "integer", "multipleOf": 7, "minimum": 100},
    {"const": {"fixed": True}},
    {"oneOf": [{"type": "null"}, {"type": "boolean"}]},
    {
        "allOf": [{"$ref": "#/$defs/a"}, {"properties": {"b": {"type": "integer"}}, "required": ["b"]}],
        "$defs": {"a": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}},
    },
    {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}, "minProperties": 3},
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
    {"type": "string", "minLength": 40},
    {"type": "string", "pattern": r"^[A-Z]{3}-\d{4}$"},
    {"type": "string", "pattern": "^(red|green)$", "minLength": 5, "maxLength": 5},
    {"$ref": "#/$defs/list", "$defs": {"list": {"type": "array", "items": {"$ref": "#"}, "maxItems": 2}}},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=range(len(SCHEMAS)))
def test_instances_validate_against_their_schema(schema: dict[str, Any]) -> None:
    for seed in SEEDS:
        assert_valid(schema, schema_instance(schema, seed=seed, topic="plan a quiet trip to the coast"))


def test_a_pydantic_models_schema_gives_json_pydantic_accepts() -> None:
    schema = to_strict_json_schema(Profile)
    for seed in SEEDS:
        made = schema_instance(schema, seed=seed)
        profile = Profile.model_validate_json(orjson.dumps(made))
        assert 18 <= profile.age <= 80  # the range an `age` plausibly has
        assert profile.name and profile.home.city


def test_the_same_seed_gives_the_same_instance_and_another_seed_another() -> None:
    schema = to_strict_json_schema(Profile)
    assert schema_instance(schema, seed="a", topic="x") == schema_instance(schema, seed="a", topic="x")
    assert schema_instance(schema, seed="a") != schema_instance(schema, seed="b")


def test_free_text_borrows_the_prompts_words() -> None:
    made = schema_instance(
        {"type": "object", "properties": {"summary": {"type": "string"}}}, seed="s", topic="lighthouse keepers"
    )
    assert set(made["summary"].lower().rstrip(".").split()) <= {"lighthouse", "keepers"}


def test_bounds_win_over_the_range_a_name_suggests() -> None:
    schema = {"type": "object", "properties": {"age": {"type": "integer", "minimum": 200}}}
    assert all(schema_instance(schema, seed=seed)["age"] >= 200 for seed in SEEDS)


def test_recursion_ends_and_a_required_self_reference_is_an_error() -> None:
    ending = to_strict_json_schema(Section)
    assert_valid(ending, schema_instance(ending, seed="deep"))
    endless = {"type": "object", "properties": {"me": {"$ref": "#"}}, "required": ["me"]}
    with pytest.raises(SchemaError, match="recurses without end"):
        schema_instance(endless, seed="x")


@pytest.mark.parametrize(
    ("schema", "problem", "context"),
    [
        (
            {"properties": {"a": {"$ref": "#/$defs/missing"}}},
            "reference '#/$defs/missing' can't be resolved",
            ("properties", "a"),
        ),
        ({"$ref": "https://example.com/schema.json"}, "is not local", ()),
        ({"type": "integer", "minimum": 1.2, "maximum": 1.8}, "no integer lies between the bounds", ()),
        ({"type": "array", "minItems": 3, "maxItems": 1}, "minItems 3 is more than maxItems 1", ()),
        (
            {"properties": {"code": {"type": "string", "pattern": "(["}}},
            "not a valid regular expression",
            ("properties", "code"),
        ),
    ],
)
def test_impossible_schemas_are_errors_that_say_where(
    schema: dict[str, Any], problem: str, context: tuple[str, ...]
) -> None:
    with pytest.raises(SchemaError, match=re.escape(problem)) as caught:
        schema_instance(schema, seed="x")
    assert caught.value.context == context


def test_strict_rules_accept_what_the_sdk_sends() -> None:
    check_strict(to_strict_json_schema(Profile), whole_object=True)


@pytest.mark.parametrize(
    ("schema", "problem", "context"),
    [
        (
            {"type": "array", "items": {}},
            """schema must be a JSON Schema of 'type: "object"', got 'type: "array"'.""",
            None,
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            "'additionalProperties' is required to be supplied and to be false.",
            (),
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                "required": ["a"],
                "additionalProperties": False,
            },
            "'required' is required to be supplied and to be an array including every key in properties. Missing 'b'.",
            (),
        ),
        (
            {
                "type": "object",
                "properties": {"tags": {"type": "array"}},
                "required": ["tags"],
                "additionalProperties": False,
            },
            "array schema missing items.",
            ("properties", "tags"),
        ),
        (
            {
                "type": "object",
                "properties": {"x": {"$ref": "#/$defs/X"}},
                "required": ["x"],
                "additionalProperties": False,
                "$defs": {"X": {"type": "object"}},
            },
            "object schema missing properties.",
            ("$defs", "X"),
        ),
    ],
)
def test_strict_rules_refuse_with_openais_wording(
    schema: dict[str, Any], problem: str, context: tuple[str, ...] | None
) -> None:
    with pytest.raises(SchemaError) as caught:
        check_strict(schema, whole_object=True)
    assert (caught.value.problem, caught.value.context) == (problem, context)
