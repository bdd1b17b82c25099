"""The simulator's faults: which marker applies to which upstream and how often, the
damage a fault does to a reply (providers/simulator/faults.py), and each fault as a
client meets it through the app."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

from providers.simulator.app import Simulator
from providers.simulator.faults import FaultBook, apply_output_fault
from providers.simulator.markers import parse_marker
from providers.simulator.replies import BodyReply, StreamReply

from .helpers import AUTH, chat, error_of


def test_times_counts_per_marker_and_upstream() -> None:
    book = FaultBook()
    markers = [parse_marker("fault=server_error times=1 id=t42", source="t")]
    assert book.select(markers, "openai") is not None
    assert book.select(markers, "openai") is None
    assert book.select(markers, "acme") is not None  # counted apart
    assert book.select(markers, "acme") is None
    book.reset()
    assert book.select(markers, "openai") is not None


def test_upstream_targeting_and_first_applicable_marker_wins() -> None:
    book = FaultBook()
    markers = [
        parse_marker("fault=server_error upstream=openai times=1", source="t"),
        parse_marker("fault=rate_limit upstream=acme", source="t"),
        parse_marker("fault=unavailable times=1", source="t"),
    ]

    def fault_for(upstream: str) -> str | None:
        marker = book.select(markers, upstream)
        return marker.fault if marker else None

    assert [fault_for("openai") for _ in range(3)] == ["server_error", "unavailable", None]
    assert fault_for("acme") == "rate_limit"
    assert fault_for("default") == "unavailable"


def test_cut_and_malformed_damage_replies() -> None:
    frames = [f"data: {index}\n\n".encode() for index in range(6)]
    stream = StreamReply(frames)
    cut = apply_output_fault(parse_marker("fault=cut_stream interval=0.5", source="t"), stream)
    assert isinstance(cut, StreamReply) and cut.cut and list(cut.frames) == frames[:3] and cut.interval == 0.5
    broken = apply_output_fault(parse_marker("fault=malformed", source="t"), stream)
    assert isinstance(broken, StreamReply) and not broken.cut and list(broken.frames[:3]) == frames[:3]
    with pytest.raises(ValueError):
        orjson.loads(broken.frames[-1].removeprefix(b"data: "))

    body = BodyReply(200, b'{"object": "chat.completion", "choices": []}')
    short = apply_output_fault(parse_marker("fault=cut_stream", source="t"), body)
    assert isinstance(short, BodyReply) and short.declared_length == len(body.body) > len(short.body)
    invalid = apply_output_fault(parse_marker("fault=malformed", source="t"), body)
    assert isinstance(invalid, BodyReply) and invalid.status == 200
    with pytest.raises(ValueError):
        orjson.loads(invalid.body)


async def test_fault_times_one_fails_once_then_succeeds(client: httpx.AsyncClient) -> None:
    request = chat("hi [sim fault=server_error times=1 id=t42]")
    first = await client.post("/openai/v1/chat/completions", json=request)
    second = await client.post("/openai/v1/chat/completions", json=request)
    other_upstream = await client.post("/acme/v1/chat/completions", json=request)
    assert (first.status_code, second.status_code, other_upstream.status_code) == (500, 200, 500)
    assert error_of(first)["type"] == "server_error"
    log = (await client.get("/_sim/requests")).json()["requests"]
    assert [entry["fault"] for entry in log] == ["server_error", None, "server_error"]
    assert log[0]["marker"] == "fault=server_error times=1 id=t42"
    assert log[1]["markers"] == ["[sim fault=server_error times=1 id=t42]"]  # found, though spent
    assert log[1]["fields"] == request


async def test_fault_upstream_targeting(client: httpx.AsyncClient) -> None:
    request = chat("[sim fault=unavailable upstream=openai]")
    openai = await client.post("/openai/v1/chat/completions", json=request)
    acme = await client.post("/acme/v1/chat/completions", json=request)
    assert (openai.status_code, acme.status_code) == (503, 200)
    assert error_of(openai)["message"] == "The server is overloaded or not ready yet."


async def test_rate_limit_carries_retry_after(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/images/generations", json={"model": "gpt-image-2", "prompt": "[sim fault=rate_limit retry_after=2.5]"}
    )
    assert response.status_code == 429
    assert (response.headers["retry-after"], response.headers["retry-after-ms"]) == ("2.5", "2500")
    assert (error_of(response)["code"], error_of(response)["type"]) == ("rate_limit_exceeded", "requests")


async def test_moderation_and_invalid_size_faults(client: httpx.AsyncClient) -> None:
    moderated = await client.post(
        "/v1/images/generations", json={"model": "gpt-image-2", "prompt": "[sim fault=moderation]"}
    )
    error = error_of(moderated)
    assert (moderated.status_code, error["type"], error["code"]) == (
        400,
        "image_generation_user_error",
        "moderation_blocked",
    )
    assert error["message"].startswith("Your request was rejected by the safety system.")
    assert moderated.headers["x-request-id"] in error["message"]
    assert error["moderation_details"]["moderation_stage"] == "input"
    sized = await client.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "[sim fault=invalid_size]", "size": "1024x1024"},
    )
    assert (sized.status_code, error_of(sized)["param"], error_of(sized)["code"]) == (400, "size", "invalid_value")


async def test_fault_from_header_and_bad_marker(client: httpx.AsyncClient) -> None:
    by_header = await client.post("/v1/chat/completions", json=chat("hi"), headers={"x-sim": "fault=unavailable"})
    assert by_header.status_code == 503
    typo = await client.post("/v1/chat/completions", json=chat("hi [sim fualt=timeout]"))
    assert typo.status_code == 400 and "'fualt'" in error_of(typo)["message"]
    typo_header = await client.post("/v1/embeddings", json={"model": "m", "input": "x"}, headers={"x-sim": "times=x"})
    assert (typo_header.status_code, error_of(typo_header)["param"]) == (400, "x-sim")


async def test_delay_slows_a_normal_answer(client: httpx.AsyncClient) -> None:
    started = time.perf_counter()
    response = await client.post("/v1/chat/completions", json=chat("[sim delay=0.3]"))
    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.3


async def test_malformed_body_is_not_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json=chat("[sim fault=malformed]"))
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        response.json()


async def test_faulted_requests_still_need_credentials(app: Simulator) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as bare:
        response = await bare.post("/v1/chat/completions", json=chat("[sim fault=server_error times=1]"))
    assert response.status_code == 401
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim", headers=AUTH) as authed:
        assert (
            await authed.post("/v1/chat/completions", json=chat("[sim fault=server_error times=1]"))
        ).status_code == 500
