"""The provider conformance suite: every provider kind passes the same tests, against
the simulator as a real HTTP upstream (on a loopback port, in a thread of its own).
Each provider is built from a config section as `tollgate serve` builds it (the
gateway), and is then driven through the proxy's own parts: a chat answer and a chat
stream, an image, the failures an upstream gives, the key it sends, and a stream its
client closes. A new kind joins by adding its config section to KINDS."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from starlette.testclient import TestClient

from providers import registry
from providers.answer_body import AnswerBody
from providers.base import Provider
from providers.errors import FailureReason
from providers.types import Call, JsonBody, Surface
from proxy.config import parse_config
from proxy.http.app import create_app
from proxy.pricing.usage import Usage, usage_from_body, usage_from_events
from proxy.serving.dispatch import RouteExhausted, dispatch
from proxy.serving.gateway import Gateway, GatewayFactory
from proxy.serving.simulated_upstreams import SIMULATED_API_KEY, InProcessSimulator
from proxy.serving.streaming import StreamOutcome, relay_stream, with_stream_usage
from proxy.state import MemoryCounters

from ..e2e.configs import VERIFIED, ConfigFile, key, route, target

UPSTREAM_KEY = "sk-conformance-upstream"
CLIENT_KEY = "sk-conformance-client"
CHAT, IMAGE = "gpt-5.4-mini", "gpt-image-2"
PACE = 1.0  # seconds between a paced stream's events: the whole stream takes several


def kinds(simulator_url: str) -> dict[str, dict[str, Any]]:
    """Each kind's provider section, on an upstream path of its own, and the name its
    route gives a model (`{model}`): LiteLLM names the vendor, Azure a deployment."""
    url = simulator_url
    return {
        "openai": {"kind": "openai", "base_url": f"{url}/openai/v1", "api_key": UPSTREAM_KEY, "model": "{model}"},
        "openai_compatible": {
            "kind": "openai_compatible",
            "base_url": f"{url}/compatible/v1",
            "api_key": UPSTREAM_KEY,
            "verified": VERIFIED,
            "model": "{model}",
        },
        "azure": {
            "kind": "azure",
            "base_url": f"{url}/azure",
            "api_version": "2025-04-01-preview",
            "api_key": UPSTREAM_KEY,
            "model": "{model}",  # a deployment named after its model
        },
        "litellm": {
            "kind": "litellm",
            "base_url": f"{url}/litellm/v1",
            "api_key": UPSTREAM_KEY,
            "verified": VERIFIED,
            "model": "openai/{model}",  # LiteLLM's OpenAI client, as for any OpenAI-compatible vendor
        },
        "simulator": {"kind": "simulator", "base_url": f"{url}/simulator/v1", "model": "{model}"},
    }


KINDS = list(kinds(""))
# The header each kind carries its key in, and the key it sends (the simulator kind sends its own).
SENT_KEY = {
    "openai": ("authorization", f"Bearer {UPSTREAM_KEY}"),
    "openai_compatible": ("authorization", f"Bearer {UPSTREAM_KEY}"),
    "azure": ("api-key", UPSTREAM_KEY),
    "litellm": ("authorization", f"Bearer {UPSTREAM_KEY}"),
    "simulator": ("authorization", f"Bearer {SIMULATED_API_KEY}"),
}


@pytest.fixture(scope="module")
def simulator_url() -> Iterator[str]:
    simulator = InProcessSimulator()
    yield simulator.start()
    simulator.stop()


def config(simulator_url: str, kind: str, ledger: dict[str, str] | None = None) -> ConfigFile:
    """One provider of `kind`, a chat route and an image route to it, and a client key."""
    section = dict(kinds(simulator_url)[kind])
    model = section.pop("model")
    return ConfigFile(
        ledger=ledger or {},
        providers={kind: {**section, "billing_owner": f"{kind}/org-conformance"}},
        routes={name: route(target(kind, model.format(model=name)), retries=0) for name in (CHAT, IMAGE)},
        keys=[key("app", CLIENT_KEY, "conformance")],
    )


@pytest.fixture(params=KINDS)
async def gateway(request, simulator_url: str) -> AsyncIterator[Gateway]:
    loaded = parse_config(config(simulator_url, request.param).yaml(), {})
    gateway = GatewayFactory(simulate_all=False, counters=MemoryCounters()).build(loaded)
    yield gateway
    await gateway.aclose()


def only_provider(gateway: Gateway) -> tuple[str, Provider]:
    ((name, provider),) = gateway.providers.items()
    return name, provider


def upstream_model(gateway: Gateway, route_name: str) -> str:
    return gateway.router.plan(route_name).targets[0].model


def tagged(text: str, **marker: object) -> tuple[str, str]:
    """`text` with a simulator marker of its own (a fault, a pace), and the marker's id."""
    tag = uuid.uuid4().hex[:12]
    options = " ".join(f"{name}={value}" for name, value in {**marker, "id": tag}.items())
    return f"{text} [sim {options}]", tag


def chat_call(text: str, *, stream: bool = False) -> Call:
    fields = {"model": CHAT, "messages": [{"role": "user", "content": text}], "stream": stream}
    call = Call("req_conformance", Surface.CHAT, CHAT, stream, JsonBody(orjson.dumps(fields), fields))
    return with_stream_usage(call)[0]  # as the proxy sends a chat stream: asking for its usage


def image_call(prompt: str) -> Call:
    fields = {"model": IMAGE, "prompt": prompt, "quality": "low", "size": "1024x1024"}
    return Call("req_conformance", Surface.IMAGES_GENERATE, IMAGE, False, JsonBody(orjson.dumps(fields), fields))


def the_upstreams_usage(simulator_url: str, call: Call) -> Usage | None:
    """The usage the upstream itself reports for `call`'s body, asked directly, whole."""
    fields = {**call.body.fields, "stream": False}
    fields.pop("stream_options", None)
    answer = httpx.post(
        f"{simulator_url}/direct/v1/{call.surface.path}",
        json=fields,
        headers={"authorization": f"Bearer {UPSTREAM_KEY}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return usage_from_body(call.surface, AnswerBody.of(answer.content), model=call.model, image_model=None)


def seen_upstream(simulator_url: str, tag: str) -> list[dict]:
    """The requests that reached the simulator carrying marker `tag`."""
    requests = httpx.get(f"{simulator_url}/_sim/requests").json()
    requests = requests["requests"] if isinstance(requests, dict) else requests
    return [request for request in requests if tag in str(request.get("fields"))]


async def relayed(gateway: Gateway, call: Call) -> tuple[bytes, StreamOutcome]:
    """`call` sent and its stream relayed whole, as the proxy relays it to a client."""
    name, provider = only_provider(gateway)
    reply = await provider.send(call, upstream_model(gateway, call.model), timeout_s=30)
    assert reply.status == 200 and reply.stream is not None
    ended: list[StreamOutcome] = []
    body = b"".join([chunk async for chunk in relay_stream(reply, call.surface, name, on_end=ended.append)])
    return body, ended[0]


# --- the tests -----------------------------------------------------------------------------


def test_every_kind_the_config_accepts_is_in_the_suite():
    assert sorted(KINDS) == sorted(registry.KINDS)


async def test_a_chat_answer_comes_back_whole_with_the_upstreams_usage(gateway, simulator_url):
    _, provider = only_provider(gateway)
    call = chat_call("hello, upstream")
    reply = await provider.send(call, upstream_model(gateway, CHAT), timeout_s=30)
    assert reply.status == 200 and reply.stream is None
    answer = orjson.loads(bytes(reply.body))
    assert answer["object"] == "chat.completion" and "hello, upstream" in answer["choices"][0]["message"]["content"]
    usage = usage_from_body(Surface.CHAT, reply.body, model=CHAT, image_model=None)
    assert usage == the_upstreams_usage(simulator_url, call) and usage[0].text_input > 0


async def test_a_chat_stream_is_relayed_to_its_end_and_its_usage_read(gateway, simulator_url):
    call = chat_call("hello, stream", stream=True)
    body, outcome = await relayed(gateway, call)
    assert outcome.completed and outcome.error is None and not outcome.client_closed
    assert body.rstrip().endswith(b"data: [DONE]") and b"hello, stream" in body
    usage = usage_from_events(Surface.CHAT, outcome.usage_events, model=CHAT, image_model=None)
    assert usage == the_upstreams_usage(simulator_url, call) and usage[0].text_output > 0


async def test_an_image_comes_back_with_the_upstreams_usage(gateway, simulator_url):
    _, provider = only_provider(gateway)
    call = image_call("a lighthouse at dusk")
    reply = await provider.send(call, upstream_model(gateway, IMAGE), timeout_s=60)
    assert reply.status == 200
    assert len(orjson.loads(bytes(reply.body))["data"][0]["b64_json"]) > 1000
    usage = usage_from_body(Surface.IMAGES_GENERATE, reply.body, model=IMAGE, image_model=None)
    assert usage == the_upstreams_usage(simulator_url, call) and usage[0].image_output > 0


@pytest.mark.parametrize(
    ("fault", "status", "reason", "code"),
    [
        ("rate_limit", 429, FailureReason.RATE_LIMITED, "upstream_rate_limited"),
        ("server_error", 502, FailureReason.UPSTREAM_5XX, "upstream_error"),
        ("timeout", 504, FailureReason.TIMEOUT, "upstream_timeout"),
    ],
)
async def test_an_upstream_failure_is_the_same_error_whatever_the_kind(
    gateway, simulator_url, fault, status, reason, code
):
    text, tag = tagged("hello", fault=fault, **({"delay": 5} if fault == "timeout" else {}))
    plan = gateway.router.plan(CHAT, timeout_s=2)
    with pytest.raises(RouteExhausted) as exhausted:
        await dispatch(chat_call(text), plan, gateway.providers)
    failure = exhausted.value
    assert (failure.status, failure.reason, failure.code) == (status, reason, code)
    assert [attempt.error for attempt in failure.attempts] == [reason]
    assert len(seen_upstream(simulator_url, tag)) == 1  # the route's retries are the only retries


@pytest.mark.parametrize("kind", KINDS)
def test_the_provider_sends_its_own_key_and_never_the_clients(simulator_url, tmp_path, kind):
    """Through the proxy's HTTP face, where the client's own headers are."""
    ledger = {"url": f"sqlite:///{tmp_path}/ledger.db", "journal_dir": f"{tmp_path}/journal"}
    loaded = parse_config(config(simulator_url, kind, ledger).yaml(), {})
    factory = GatewayFactory(simulate_all=False, counters=MemoryCounters())
    text, tag = tagged("who am I?")
    with TestClient(create_app(lambda: factory.build(loaded))) as client:
        answer = client.post(
            "/v1/chat/completions",
            json={"model": CHAT, "messages": [{"role": "user", "content": text}]},
            headers={"authorization": f"Bearer {CLIENT_KEY}", "openai-organization": "org-client"},
        )
    assert answer.status_code == 200, answer.text
    (seen,) = seen_upstream(simulator_url, tag)
    header, value = SENT_KEY[kind]
    assert seen["headers"][header] == value
    assert CLIENT_KEY not in str(seen["headers"]) and "org-client" not in str(seen["headers"])


async def test_closing_a_stream_closes_the_upstream(gateway, simulator_url):
    name, provider = only_provider(gateway)
    text, tag = tagged("tell me a long story", interval=PACE)
    reply = await provider.send(chat_call(text, stream=True), upstream_model(gateway, CHAT), timeout_s=30)
    relay = relay_stream(reply, Surface.CHAT, name)
    assert await anext(relay)  # the first words
    await relay.aclose()  # what the HTTP face does when its client hangs up

    deadline = time.monotonic() + 15
    while (stream := seen_upstream(simulator_url, tag)[0]["stream"]) is None:  # the upstream has stopped
        assert time.monotonic() < deadline, "the upstream is still sending"
        await asyncio.sleep(0.05)  # the loop must run, for the close to reach the socket
    # It saw its client leave and sent no more; left open, it would have sent every event.
    assert stream["client_closed_at"] is not None and stream["sent"] < stream["events"], stream
