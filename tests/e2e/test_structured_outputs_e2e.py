"""Structured outputs and function calling through the official SDK's helpers
(`.parse()`, `pydantic_function_tool`, the streaming helpers), against the simulator
as a real server and through `tollgate serve --simulate-upstreams`, the way
instructor, pydantic-ai and langchain's `with_structured_output` drive them."""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Iterator
from typing import Literal

import jsonschema
import openai
import pytest
from openai import OpenAI
from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel, Field

from providers.image_tokens import text_tokens

from .harness import ROOT, Proxy


class Stop(BaseModel):
    city: str
    nights: int = Field(ge=1, le=14)
    arrival: datetime.date


class Itinerary(BaseModel):
    """A trip plan."""

    id: uuid.UUID
    title: str
    pace: Literal["slow", "moderate", "fast"]
    stops: list[Stop]
    notes: str | None


class GetWeather(BaseModel):
    """Get the weather forecast for a city."""

    city: str
    unit: Literal["celsius", "fahrenheit"]
    days: int = Field(ge=1, le=7)


def assert_fits(model: type[BaseModel], arguments: str) -> None:
    """Valid against the schema the SDK sent, by a JSON Schema validator as well as by pydantic."""
    schema = to_strict_json_schema(model)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    validator.validate(json.loads(arguments))
    model.model_validate_json(arguments)


@pytest.fixture(scope="module")
def simulated_proxy(start_proxy) -> Proxy:
    """The example config with every upstream answered by the built-in simulator."""
    return start_proxy(ROOT.joinpath("config.yaml").read_text(), "--simulate-upstreams")


@pytest.fixture(params=["simulator", "proxy"])
def client(request, simulator) -> Iterator[OpenAI]:
    """The simulator itself, and the proxy in front of the in-process simulator."""
    if request.param == "simulator":
        yield OpenAI(base_url=f"{simulator.url}/openai/v1", api_key="sk-test", max_retries=0, timeout=20)
    else:
        yield request.getfixturevalue("simulated_proxy").client(timeout=20)


def test_chat_parse_gives_a_pydantic_instance(client: OpenAI) -> None:
    messages = [{"role": "user", "content": "Plan three slow days in Portugal"}]
    completion = client.chat.completions.parse(model="gpt-5.4-mini", messages=messages, response_format=Itinerary)
    message = completion.choices[0].message
    assert isinstance(message.parsed, Itinerary) and message.parsed.stops
    assert_fits(Itinerary, message.content)
    again = client.chat.completions.parse(model="gpt-5.4-mini", messages=messages, response_format=Itinerary)
    assert again.choices[0].message.parsed == message.parsed  # the same prompt, the same answer


def test_responses_parse_gives_a_pydantic_instance(client: OpenAI) -> None:
    response = client.responses.parse(model="gpt-5.4", input="Plan a week in Japan", text_format=Itinerary)
    assert isinstance(response.output_parsed, Itinerary)
    assert_fits(Itinerary, response.output_text)


def test_chat_parse_with_a_pydantic_function_tool(client: OpenAI) -> None:
    completion = client.chat.completions.parse(
        model="gpt-5.4-mini",
        messages=[{"role": "user", "content": "What is the weather forecast in Lisbon?"}],
        tools=[openai.pydantic_function_tool(GetWeather)],
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.function.name == "GetWeather" and isinstance(call.function.parsed_arguments, GetWeather)
    assert_fits(GetWeather, call.function.arguments)


def test_a_streamed_tool_call_assembles_with_the_sdks_stream_helper(client: OpenAI) -> None:
    with client.chat.completions.stream(
        model="gpt-5.4-mini",
        messages=[{"role": "user", "content": "What is the weather forecast in Oslo?"}],
        tools=[openai.pydantic_function_tool(GetWeather)],
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_completion()
    assert kinds.count("tool_calls.function.arguments.delta") > 1
    assert "tool_calls.function.arguments.done" in kinds
    [call] = final.choices[0].message.tool_calls
    assert isinstance(call.function.parsed_arguments, GetWeather)
    assert_fits(GetWeather, call.function.arguments)


def test_streamed_structured_content_parses_with_the_sdks_stream_helper(client: OpenAI) -> None:
    with client.chat.completions.stream(
        model="gpt-5.4-mini",
        messages=[{"role": "user", "content": "Plan a weekend in Oslo"}],
        response_format=Itinerary,
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_completion()
    assert kinds.count("content.delta") > 1 and "content.done" in kinds
    assert isinstance(final.choices[0].message.parsed, Itinerary)


def test_a_streamed_responses_function_call_assembles(client: OpenAI) -> None:
    with client.responses.stream(
        model="gpt-5.4",
        input="What is the weather forecast in Oslo?",
        tools=[openai.pydantic_function_tool(GetWeather)],
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds
    [call] = final.output
    assert call.type == "function_call" and isinstance(call.parsed_arguments, GetWeather)
    assert_fits(GetWeather, call.arguments)


def test_n_gives_that_many_parsed_choices(client: OpenAI) -> None:
    completion = client.chat.completions.parse(
        model="gpt-5.4-mini",
        messages=[{"role": "user", "content": "Plan a trip"}],
        response_format=Itinerary,
        n=3,
    )
    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    assert all(isinstance(choice.message.parsed, Itinerary) for choice in completion.choices)
    contents = [choice.message.content for choice in completion.choices]
    assert completion.usage.completion_tokens == sum(text_tokens(content) for content in contents)
