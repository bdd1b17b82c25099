"""A conversation lives on one upstream, in-process: the app on Starlette's test
client, two providers on a live simulator (each keeps its own responses, as two
accounts would), and the conversation map counted as the request path uses it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import httpx
import pytest
from starlette.testclient import TestClient

from proxy.config import parse_config
from proxy.http.app import create_app
from proxy.serving.conversation_routing import answer_ids, created_ids
from proxy.serving.gateway import GatewayFactory
from proxy.serving.simulated_upstreams import InProcessSimulator
from proxy.state import Binding, MemoryConversations, MemoryCounters
from proxy.state.redis_conversations import RedisConversations

CONFIG = """
ledger:
  url: sqlite:///${LEDGER_DIR}/ledger.db
  journal_dir: ${LEDGER_DIR}/journal
providers:
  east: {kind: openai, base_url: "${SIM}/east/v1", api_key: sk-east, billing_owner: east/org}
  west: {kind: openai, base_url: "${SIM}/west/v1", api_key: sk-west, billing_owner: west/org}
routes:
  gpt-5.4:
    targets: [{provider: east, model: gpt-5.4, weight: 1}, {provider: west, model: gpt-5.4, weight: 1}]
    retries: 1
  gpt-5.4-drained-west:
    targets: [{provider: east, model: gpt-5.4, weight: 1}, {provider: west, model: gpt-5.4, weight: 0}]
  gpt-5.4-west:
    targets: [{provider: west, model: gpt-5.4}]
  gpt-5.4-east:
    targets: [{provider: east, model: gpt-5.4}]
  gpt-5.4-mini:
    targets: [{provider: east, model: gpt-5.4-mini}, {provider: west, model: gpt-5.4-mini}]
  gpt-image-2:
    targets: [{provider: east, model: gpt-image-2}, {provider: west, model: gpt-image-2}]
  text-embedding-3-small:
    targets: [{provider: east, model: text-embedding-3-small}, {provider: west, model: text-embedding-3-small}]
"""


class CountedConversations(MemoryConversations):
    """The memory map, counting the round trips the request path makes to it."""

    def __init__(self) -> None:
        super().__init__(ttl_s=3600)
        self.finds = self.binds = 0

    async def find(self, conversation_id: str) -> Binding | None:
        self.finds += 1
        return await super().find(conversation_id)

    async def bind(self, conversation_ids: Sequence[str], binding: Binding) -> None:
        self.binds += 1
        await super().bind(conversation_ids, binding)


@pytest.fixture(scope="module")
def simulator_url() -> Iterator[str]:
    simulator = InProcessSimulator()
    yield simulator.start()
    simulator.stop()


def proxy_client(tmp_path, simulator_url, conversations) -> TestClient:
    loaded = parse_config(CONFIG, {"LEDGER_DIR": str(tmp_path), "SIM": simulator_url})
    factory = GatewayFactory(simulate_all=False, counters=MemoryCounters(), conversations=conversations)
    return TestClient(create_app(lambda: factory.build(loaded)))


@pytest.fixture
def counted() -> CountedConversations:
    return CountedConversations()


@pytest.fixture
def proxy(tmp_path, simulator_url, counted) -> Iterator[TestClient]:
    with proxy_client(tmp_path, simulator_url, counted) as client:
        yield client


def respond(proxy: TestClient, model: str = "gpt-5.4", **fields) -> httpx.Response:
    return proxy.post("/v1/responses", json={"model": model, "input": "hello", **fields})


def upstream_requests(simulator_url: str, upstream: str) -> int:
    return len(httpx.get(f"{simulator_url}/_sim/requests", params={"upstream": upstream}).json()["requests"])


def test_only_responses_answers_bind_and_only_follow_ups_look_up(proxy, counted):
    for _ in range(3):
        assert (
            proxy.post(
                "/v1/chat/completions", json={"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": "hi"}]}
            ).status_code
            == 200
        )
    assert proxy.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"}).status_code == 200
    image = {"model": "gpt-image-2", "prompt": "a dot", "quality": "low", "size": "1024x1024"}
    assert proxy.post("/v1/images/generations", json=image).status_code == 200
    assert (counted.finds, counted.binds) == (0, 0)

    made = [respond(proxy) for _ in range(3)]
    with proxy.stream("POST", "/v1/responses", json={"model": "gpt-5.4", "input": "hi", "stream": True}) as stream:
        assert b"response.completed" in b"".join(stream.iter_bytes())
    assert respond(proxy, store=False).status_code == 200  # nothing kept upstream, nothing to bind
    assert (counted.finds, counted.binds) == (0, 4)

    assert respond(proxy, previous_response_id=made[0].json()["id"]).status_code == 200
    assert (counted.finds, counted.binds) == (1, 5)


def test_each_follow_up_goes_to_the_provider_that_made_its_response(proxy):
    firsts = [respond(proxy) for _ in range(20)]
    assert {first.headers["x-tollgate-provider"] for first in firsts} == {"east", "west"}  # the weights were in play
    for first in firsts:
        follow_up = respond(proxy, previous_response_id=first.json()["id"])
        assert follow_up.status_code == 200, follow_up.text
        assert follow_up.headers["x-tollgate-provider"] == first.headers["x-tollgate-provider"]
        assert follow_up.headers["x-tollgate-attempts"] == "1"


def test_a_streamed_response_is_bound_as_its_id_passes(proxy):
    for _ in range(6):
        body = {"model": "gpt-5.4", "input": "hi", "stream": True}
        with proxy.stream("POST", "/v1/responses", json=body) as stream:
            provider = stream.headers["x-tollgate-provider"]
            response_id = created_ids(b"".join(stream.iter_bytes()))[0]
        follow_up = respond(proxy, previous_response_id=response_id)
        assert follow_up.status_code == 200 and follow_up.headers["x-tollgate-provider"] == provider


def test_a_drained_target_still_takes_its_follow_ups_on_another_route(proxy):
    made = respond(proxy, "gpt-5.4-west")
    follow_up = respond(proxy, "gpt-5.4-drained-west", previous_response_id=made.json()["id"])
    assert follow_up.status_code == 200 and follow_up.headers["x-tollgate-provider"] == "west"


def test_a_route_that_no_longer_sends_to_the_provider_is_one_clear_error(proxy, simulator_url):
    made = respond(proxy, "gpt-5.4-west").json()["id"]
    before = upstream_requests(simulator_url, "east"), upstream_requests(simulator_url, "west")
    refused = respond(proxy, "gpt-5.4-east", previous_response_id=made)
    assert refused.status_code == 503
    error = refused.json()["error"]
    assert error["code"] == "conversation_provider_unavailable"
    assert f"'{made}'" in error["message"] and "provider 'west'" in error["message"]
    assert "route 'gpt-5.4-east' no longer sends to 'west'" in error["message"]
    assert refused.headers["x-tollgate-provider"] == "west"
    assert (upstream_requests(simulator_url, "east"), upstream_requests(simulator_url, "west")) == before


def test_a_failing_bound_provider_is_one_error_naming_it_and_no_switch(proxy, simulator_url):
    made = respond(proxy)
    home = made.headers["x-tollgate-provider"]
    other = "west" if home == "east" else "east"
    before = upstream_requests(simulator_url, other)
    failed = respond(proxy, input="[sim fault=server_error]", previous_response_id=made.json()["id"])
    assert failed.status_code == 502
    message = failed.json()["error"]["message"]
    assert f"Provider '{home}' holds '{made.json()['id']}'" in message and "cannot move" in message
    assert message.count(f"{home}: upstream_5xx") == 2  # one try and its retry, both at home
    assert upstream_requests(simulator_url, other) == before


def test_an_id_never_bound_here_routes_as_usual_and_the_upstream_decides(proxy, counted):
    answered = respond(proxy, previous_response_id="resp_made_before_tollgate")
    assert counted.finds == 1
    assert answered.status_code == 400
    assert answered.json()["error"]["code"] == "previous_response_not_found"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"previous_response_id": 42}, "previous_response_id"),
        ({"previous_response_id": ""}, "previous_response_id"),
        ({"conversation": ["conv_1"]}, "conversation"),
        ({"conversation": {"name": "x"}}, "conversation"),
        ({"conversation": "conv_1", "previous_response_id": "resp_1"}, "conversation"),
    ],
)
def test_a_malformed_follow_up_is_a_400_naming_the_field(proxy, counted, fields, param):
    refused = respond(proxy, **fields)
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == param
    assert counted.finds == 0


def test_stored_responses_are_reached_where_they_were_made(proxy, simulator_url):
    made = respond(proxy, input=[{"role": "user", "content": "one"}], background=True)
    response_id, home = made.json()["id"], made.headers["x-tollgate-provider"]
    other = "west" if home == "east" else "east"
    before = upstream_requests(simulator_url, other)

    retrieved = proxy.get(f"/v1/responses/{response_id}")
    assert retrieved.status_code == 200 and retrieved.json()["id"] == response_id
    assert retrieved.headers["x-tollgate-provider"] == home and retrieved.headers["x-tollgate-route"] == "gpt-5.4"
    assert retrieved.headers["x-request-id"].startswith("req_") and "x-tollgate-cost-usd" not in retrieved.headers
    items = proxy.get(f"/v1/responses/{response_id}/input_items", params={"limit": 5})
    assert [item["content"][0]["text"] for item in items.json()["data"]] == ["one"]
    assert proxy.post(f"/v1/responses/{response_id}/cancel").json()["status"] == "completed"
    assert proxy.delete(f"/v1/responses/{response_id}").json()["deleted"] is True
    gone = proxy.get(f"/v1/responses/{response_id}")  # still bound: the upstream says it is gone
    assert gone.status_code == 404 and gone.headers["x-tollgate-provider"] == home
    assert upstream_requests(simulator_url, other) == before


def test_an_unknown_stored_response_is_a_404_without_an_upstream_call(proxy, simulator_url):
    before = upstream_requests(simulator_url, "east") + upstream_requests(simulator_url, "west")
    for method, path in [
        ("GET", "/v1/responses/resp_unknown"),
        ("DELETE", "/v1/responses/resp_unknown"),
        ("GET", "/v1/responses/resp_unknown/input_items"),
        ("POST", "/v1/responses/resp_unknown/cancel"),
    ]:
        answer = proxy.request(method, path)
        assert answer.status_code == 404, path
        assert answer.json()["error"]["code"] == "response_not_found"
        assert "Response with id 'resp_unknown' not found." in answer.json()["error"]["message"]
        assert answer.headers["x-request-id"].startswith("req_")
    assert upstream_requests(simulator_url, "east") + upstream_requests(simulator_url, "west") == before


def test_a_stored_response_on_a_provider_no_longer_configured_is_a_503(proxy, counted):
    import asyncio

    asyncio.run(counted.bind(["resp_on_gone"], Binding("gone", "gpt-5.4", "gpt-5.4")))
    answer = proxy.get("/v1/responses/resp_on_gone")
    assert answer.status_code == 503
    assert "provider 'gone', which is no longer configured" in answer.json()["error"]["message"]
    refused = respond(proxy, previous_response_id="resp_on_gone")
    assert (
        refused.status_code == 503 and "provider 'gone' is no longer configured" in refused.json()["error"]["message"]
    )


def test_a_stored_response_is_not_streamed(proxy):
    made = respond(proxy).json()["id"]
    refused = proxy.get(f"/v1/responses/{made}", params={"stream": "true"})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "stream"


def test_without_its_state_store_a_follow_up_is_refused_and_an_answer_still_goes_out(tmp_path, simulator_url):
    down = RedisConversations("redis://127.0.0.1:1/0", prefix="tollgate-test", ttl_s=60)
    with proxy_client(tmp_path, simulator_url, down) as proxy:
        assert respond(proxy).status_code == 200  # made and billed: sent, unbound
        refused = respond(proxy, previous_response_id="resp_1")
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "state_unavailable"
        assert refused.headers["retry-after"] == "1"


def test_answer_ids_reads_a_response_and_its_conversation():
    assert answer_ids(b'{"id": "resp_1", "conversation": {"id": "conv_1"}, "output": []}') == ["resp_1", "conv_1"]
    assert answer_ids(b'{"id": "resp_1", "conversation": null}') == ["resp_1"]
    image = b"A" * 400_000  # an image's base64: too large to parse for an id
    large = b'{"id":"resp_big","output":[{"id":"ig_1","result":"' + image + b'"}],"conversation":{"id":"conv_9"}}'
    assert answer_ids(large) == ["resp_big", "conv_9"]
    assert answer_ids(b"not json") == []


def test_created_ids_finds_the_id_in_either_framing():
    named = b'event: response.created\r\ndata: {"type":"response.created","response":{"id":"resp_1"}}\r\n\r\n'
    assert created_ids(named) == ["resp_1"]
    bare = b'data: {"type":"response.in_progress"}\n\ndata: {"type":"response.created","response":{"id":"r2"}}\n\n'
    assert created_ids(bare) == ["r2"]
    assert created_ids(b'event: response.output_text.delta\ndata: {"delta":"x"}\n\n') == []


def test_a_reload_keeps_where_conversations_live(tmp_path, simulator_url):
    loaded = parse_config(CONFIG, {"LEDGER_DIR": str(tmp_path), "SIM": simulator_url})
    factory = GatewayFactory(simulate_all=False, counters=MemoryCounters())
    first = factory.build(loaded)
    assert factory.build(loaded, previous=first).conversations is first.conversations
