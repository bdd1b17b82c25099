"""The simulator's chat and Responses endpoints answering function tools, structured
outputs and `n`, in-process through httpx's ASGI transport. The official SDK's
`.parse()` and streaming helpers drive the same features in
tests/e2e/test_structured_outputs_e2e.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema
import orjson
import pytest

from providers.image_tokens import text_tokens
from providers.simulator import create_app

AUTH = {"Authorization": "Bearer sk-test"}

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit", "days"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
SEARCH = {
    "type": "function",
    "function": {
        "name": "search_flights",
        "description": "Find flights between two airports",
        "parameters": {
            "type": "object",
            "properties": {"origin": {"type": "string"}, "destination": {"type": "string"}},
            "required": ["origin", "destination"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "languages": {"type": "array", "items": {"type": "string"}},
        "email": {"type": ["string", "null"], "format": "email"},
    },
    "required": ["name", "age", "languages", "email"],
    "additionalProperties": False,
}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://sim", headers=AUTH) as http:
        yield http


async def chat(client: httpx.AsyncClient, text: str, **fields: Any) -> dict[str, Any]:
    request = {"model": "gpt-4.1", "messages": [{"role": "user", "content": text}], **fields}
    response = await client.post("/v1/chat/completions", json=request)
    assert response.status_code == 200, response.text
    return response.json()


async def refusal(client: httpx.AsyncClient, path: str, request: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=request)
    assert response.status_code == 400, response.text
    return response.json()["error"]


def sse_data(body: bytes) -> list[dict[str, Any]]:
    frames = [frame.split("data: ", 1)[1] for frame in body.decode().split("\n\n") if "data: " in frame]
    return [orjson.loads(frame) for frame in frames if frame != "[DONE]"]


def called(body: dict[str, Any], index: int = 0) -> list[tuple[str, dict[str, Any]]]:
    calls = body["choices"][index]["message"].get("tool_calls") or []
    return [(call["function"]["name"], orjson.loads(call["function"]["arguments"])) for call in calls]


# ---- chat: function tools ------------------------------------------------------------------------


async def test_auto_calls_the_tool_the_prompt_is_about(client: httpx.AsyncClient) -> None:
    body = await chat(client, "What is the weather in Lisbon tomorrow?", tools=[WEATHER, SEARCH])
    [choice] = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    [(name, arguments)] = called(body)
    assert name == "get_weather"
    jsonschema.validate(arguments, WEATHER["function"]["parameters"])
    assert body["usage"]["completion_tokens"] == text_tokens("get_weather") + text_tokens(call["function"]["arguments"])


async def test_auto_answers_in_text_when_no_tool_fits_or_a_result_is_in(client: httpx.AsyncClient) -> None:
    unrelated = await chat(client, "Tell me a joke", tools=[WEATHER])
    assert unrelated["choices"][0]["finish_reason"] == "stop"
    assert "Tell me a joke" in unrelated["choices"][0]["message"]["content"]
    messages = [
        {"role": "user", "content": "What is the weather in Lisbon?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 24C"},
    ]
    response = await client.post(
        "/v1/chat/completions", json={"model": "gpt-4.1", "messages": messages, "tools": [WEATHER]}
    )
    answered = response.json()["choices"][0]
    assert answered["finish_reason"] == "stop" and answered["message"]["content"]


async def test_none_never_calls_and_required_always_does(client: httpx.AsyncClient) -> None:
    weather_question = "What is the weather in Lisbon?"
    never = await chat(client, weather_question, tools=[WEATHER], tool_choice="none")
    assert never["choices"][0]["message"].get("tool_calls") is None
    always = await chat(client, "Tell me a joke", tools=[SEARCH, WEATHER], tool_choice="required")
    assert [name for name, _ in called(always)] == ["search_flights"]  # nothing fits: the first tool
    assert always["choices"][0]["finish_reason"] == "tool_calls"


async def test_a_forced_loop_moves_on_to_a_tool_not_called_yet(client: httpx.AsyncClient) -> None:
    messages = [
        {"role": "user", "content": "What is the weather in Lisbon?"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    request = {"model": "gpt-4.1", "messages": messages, "tools": [WEATHER, SEARCH], "tool_choice": "required"}
    body = (await client.post("/v1/chat/completions", json=request)).json()
    assert [name for name, _ in called(body)] == ["search_flights"]


async def test_a_function_forced_by_name_is_called_and_finishes_with_stop(client: httpx.AsyncClient) -> None:
    choice = {"type": "function", "function": {"name": "search_flights"}}
    body = await chat(client, "What is the weather in Lisbon?", tools=[WEATHER, SEARCH], tool_choice=choice)
    [(name, arguments)] = called(body)
    assert name == "search_flights" and set(arguments) == {"origin", "destination"}
    assert body["choices"][0]["finish_reason"] == "stop"


async def test_tools_named_in_the_prompt_are_called_in_parallel_unless_told_not_to(
    client: httpx.AsyncClient,
) -> None:
    text = "Use get_weather for Oslo and search_flights from LIS to OSL"
    both = await chat(client, text, tools=[WEATHER, SEARCH])
    assert [name for name, _ in called(both)] == ["get_weather", "search_flights"]
    one = await chat(client, text, tools=[WEATHER, SEARCH], parallel_tool_calls=False)
    assert [name for name, _ in called(one)] == ["get_weather"]
    allowed = {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [SEARCH]}}
    only_search = await chat(client, text, tools=[WEATHER, SEARCH], tool_choice=allowed)
    assert [name for name, _ in called(only_search)] == ["search_flights"]


async def test_the_same_prompt_gets_the_same_arguments(client: httpx.AsyncClient) -> None:
    first = await chat(client, "weather in Kyoto please", tools=[WEATHER])
    again = await chat(client, "weather in Kyoto please", tools=[WEATHER])
    assert called(first) and called(first) == called(again)


async def test_tools_count_in_the_prompt_tokens(client: httpx.AsyncClient) -> None:
    plain = await chat(client, "Tell me a joke")
    with_tools = await chat(client, "Tell me a joke", tools=[WEATHER])
    extra = with_tools["usage"]["prompt_tokens"] - plain["usage"]["prompt_tokens"]
    assert extra == text_tokens(orjson.dumps([WEATHER]).decode())


async def test_streamed_tool_calls_come_as_openai_streams_them(client: httpx.AsyncClient) -> None:
    request = {
        "model": "gpt-4.1",
        "stream": True,
        "messages": [{"role": "user", "content": "Use get_weather for Oslo and search_flights from LIS to OSL"}],
        "tools": [WEATHER, SEARCH],
    }
    chunks = sse_data((await client.post("/v1/chat/completions", json=request)).content)
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    opening = deltas[0]
    assert (opening["role"], opening["content"]) == ("assistant", None)
    [start] = opening["tool_calls"]
    assert start["index"] == 0 and start["id"].startswith("call_") and start["type"] == "function"
    assert start["function"] == {"name": "get_weather", "arguments": ""}
    starts = [delta["tool_calls"][0] for delta in deltas if "id" in (delta.get("tool_calls") or [{}])[0]]
    assert [(each["index"], each["function"]["name"]) for each in starts] == [(0, "get_weather"), (1, "search_flights")]
    for index, schema in ((0, WEATHER), (1, SEARCH)):
        fragments = [
            call["function"]["arguments"]
            for delta in deltas
            for call in delta.get("tool_calls") or []
            if call["index"] == index and "id" not in call
        ]
        assert len(fragments) > 1
        jsonschema.validate(orjson.loads("".join(fragments)), schema["function"]["parameters"])
    assert [chunk["choices"][0]["finish_reason"] for chunk in chunks][-1] == "tool_calls"


async def test_tool_requests_with_mistakes_are_400s_that_say_what_to_change(client: httpx.AsyncClient) -> None:
    base = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
    unknown = await refusal(
        client,
        "/v1/chat/completions",
        {**base, "tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
    )
    assert (unknown["param"], unknown["message"]) == (
        "tool_choice",
        "Tool choice 'nope' not found in 'tools' parameter.",
    )
    without_tools = await refusal(client, "/v1/chat/completions", {**base, "tool_choice": "required"})
    assert (
        without_tools["param"] == "tool_choice"
        and "only allowed when 'tools' are specified" in without_tools["message"]
    )
    loose = {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": False}
    strict_tool = {"type": "function", "function": {"name": "lookup", "parameters": loose, "strict": True}}
    not_strict = await refusal(client, "/v1/chat/completions", {**base, "tools": [strict_tool]})
    assert not_strict == {
        "message": "Invalid schema for function 'lookup': In context=(), 'required' is required to be supplied and "
        "to be an array including every key in properties. Missing 'city'.",
        "type": "invalid_request_error",
        "param": "tools[0].function.parameters",
        "code": "invalid_function_parameters",
    }
    bad_name = {"type": "function", "function": {"name": "look up"}}
    assert (await refusal(client, "/v1/chat/completions", {**base, "tools": [bad_name]}))["param"] == (
        "tools[0].function.name"
    )
    # Not strict: the same schema is accepted, and the answer still fits it.
    accepted = await chat(
        client, "lookup Paris", tools=[{**strict_tool, "function": {**strict_tool["function"], "strict": False}}]
    )
    [(_, arguments)] = called(accepted)
    jsonschema.validate(arguments, loose)


# ---- chat: structured outputs and n ----------------------------------------------------------------


async def test_json_schema_format_answers_json_that_validates(client: httpx.AsyncClient) -> None:
    response_format = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
    body = await chat(client, "Describe a famous programmer", response_format=response_format)
    content = body["choices"][0]["message"]["content"]
    jsonschema.validate(orjson.loads(content), PERSON)
    assert body["usage"]["completion_tokens"] == text_tokens(content)
    assert body["usage"]["prompt_tokens"] == text_tokens("Describe a famous programmer") + text_tokens(
        orjson.dumps(PERSON).decode()
    )


async def test_a_strict_schema_breaking_openais_rules_is_refused(client: httpx.AsyncClient) -> None:
    loose = {**PERSON, "additionalProperties": True}
    error = await refusal(
        client,
        "/v1/chat/completions",
        {
            "model": "gpt-4.1",
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": loose, "strict": True},
            },
        },
    )
    assert error["param"] == "response_format"
    assert error["message"] == (
        "Invalid schema for response_format 'person': In context=(), "
        "'additionalProperties' is required to be supplied and to be false."
    )


async def test_json_mode_needs_the_word_json_and_then_answers_an_object(client: httpx.AsyncClient) -> None:
    request = {"model": "gpt-4.1", "response_format": {"type": "json_object"}}
    error = await refusal(client, "/v1/chat/completions", {**request, "messages": [{"role": "user", "content": "hi"}]})
    assert error["param"] == "messages" and "must contain the word 'json'" in error["message"]
    body = await chat(client, "Answer in JSON: hi", response_format={"type": "json_object"})
    assert isinstance(orjson.loads(body["choices"][0]["message"]["content"]), dict)


async def test_n_gives_n_choices_and_counts_each(client: httpx.AsyncClient) -> None:
    response_format = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
    body = await chat(client, "Describe a programmer", n=3, response_format=response_format)
    contents = [choice["message"]["content"] for choice in body["choices"]]
    assert [choice["index"] for choice in body["choices"]] == [0, 1, 2]
    assert len(set(contents)) == 3  # three samples, not one answer thrice
    for content in contents:
        jsonschema.validate(orjson.loads(content), PERSON)
    assert body["usage"]["completion_tokens"] == sum(text_tokens(content) for content in contents)
    single = await chat(client, "Describe a programmer", response_format=response_format)
    assert single["usage"]["prompt_tokens"] == body["usage"]["prompt_tokens"]  # the prompt counts once


async def test_n_streams_every_choice(client: httpx.AsyncClient) -> None:
    request = {"model": "gpt-4.1", "stream": True, "n": 2, "messages": [{"role": "user", "content": "hello"}]}
    chunks = sse_data((await client.post("/v1/chat/completions", json=request)).content)
    for index in (0, 1):
        mine = [chunk["choices"][0] for chunk in chunks if chunk["choices"][0]["index"] == index]
        assert "hello" in "".join(choice["delta"].get("content") or "" for choice in mine)
        assert mine[-1]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("n", "code", "says"),
    [
        (0, "integer_below_min_value", "Expected a value >= 1, but got 0 instead."),
        (129, "integer_above_max_value", "Expected a value <= 128, but got 129 instead."),
        ("2", "invalid_type", "expected an integer, but got a string instead."),
    ],
)
async def test_a_bad_n_is_refused(client: httpx.AsyncClient, n: Any, code: str, says: str) -> None:
    error = await refusal(
        client, "/v1/chat/completions", {"model": "gpt-4.1", "n": n, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert (error["param"], error["code"]) == ("n", code)
    assert error["message"].endswith(says)


# ---- Responses ---------------------------------------------------------------------------------


def responses_tool(chat_tool: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", **chat_tool["function"]}


async def test_responses_calls_a_function(client: httpx.AsyncClient) -> None:
    request = {"model": "gpt-5.4", "input": "What is the weather in Oslo?", "tools": [responses_tool(WEATHER)]}
    body = (await client.post("/v1/responses", json=request)).json()
    [item] = body["output"]
    assert (item["type"], item["status"], item["name"]) == ("function_call", "completed", "get_weather")
    assert item["id"].startswith("fc_") and item["call_id"].startswith("call_")
    jsonschema.validate(orjson.loads(item["arguments"]), WEATHER["function"]["parameters"])
    assert body["usage"]["output_tokens"] == text_tokens("get_weather") + text_tokens(item["arguments"])
    definitions = orjson.dumps(request["tools"]).decode()
    assert body["usage"]["input_tokens"] == text_tokens("What is the weather in Oslo?") + text_tokens(definitions)
    follow_up = {
        **request,
        "input": [
            {"role": "user", "content": "What is the weather in Oslo?"},
            {
                "type": "function_call",
                "call_id": item["call_id"],
                "name": "get_weather",
                "arguments": item["arguments"],
            },
            {"type": "function_call_output", "call_id": item["call_id"], "output": "snow, -2C"},
        ],
    }
    answer = (await client.post("/v1/responses", json=follow_up)).json()
    assert [each["type"] for each in answer["output"]] == ["message"]


async def test_responses_text_format_json_schema(client: httpx.AsyncClient) -> None:
    text = {"format": {"type": "json_schema", "name": "person", "schema": PERSON, "strict": True}}
    body = (await client.post("/v1/responses", json={"model": "gpt-5.4", "input": "a programmer", "text": text})).json()
    [message] = body["output"]
    jsonschema.validate(orjson.loads(message["content"][0]["text"]), PERSON)
    assert body["text"]["format"]["name"] == "person"
    error = await refusal(
        client, "/v1/responses", {"model": "gpt-5.4", "input": "hi", "text": {"format": {"type": "json_object"}}}
    )
    assert error["param"] == "input" and "must contain the word 'json'" in error["message"]


async def test_responses_streams_function_call_arguments(client: httpx.AsyncClient) -> None:
    request = {
        "model": "gpt-5.4",
        "input": "What is the weather in Oslo?",
        "tools": [responses_tool(WEATHER)],
        "stream": True,
    }
    events = sse_data((await client.post("/v1/responses", json=request)).content)
    kinds = [event["type"] for event in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert set(kinds[3:-3]) == {"response.function_call_arguments.delta"}
    added = events[2]["item"]
    assert (added["type"], added["status"], added["arguments"]) == ("function_call", "in_progress", "")
    deltas = "".join(event["delta"] for event in events if event["type"] == "response.function_call_arguments.delta")
    assert deltas == events[-3]["arguments"] == events[-1]["response"]["output"][0]["arguments"]
    assert all(event["item_id"] == added["id"] for event in events[3:-2])
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
