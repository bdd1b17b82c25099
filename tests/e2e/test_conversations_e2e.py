"""A conversation lives on one upstream, through the real `tollgate serve` and the
official SDK: two separate simulator processes are the two providers of one route
at weight 1:1, each knowing only the responses it made (as two OpenAI accounts
would), so a follow-up sent to the other one fails with its 400
`previous_response_not_found`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import openai
import pytest
import redis

from . import configs
from .harness import (
    OPENAI_UPSTREAM_KEY,
    Proxy,
    Server,
    free_port,
    marker,
    tollgate,
    upstream_requests,
    wait_until_ready,
)

PROVIDERS = ("east", "west")


def start_simulator(folder, name: str) -> Server:
    port = free_port()
    process = tollgate("simulate", "--port", str(port), log_path=folder / f"simulator-{name}.log")
    server = Server(f"http://127.0.0.1:{port}", process, folder / f"simulator-{name}.log")
    wait_until_ready(f"{server.url}/_sim/requests", process)
    return server


@pytest.fixture(scope="module")
def simulators(tmp_path_factory) -> Iterator[dict[str, Server]]:
    folder = tmp_path_factory.mktemp("simulators")
    started = {name: start_simulator(folder, name) for name in PROVIDERS}
    yield started
    for server in started.values():
        server.stop()


def config(simulators: dict[str, Server]) -> configs.ConfigFile:
    """Each simulator a provider of its own name; the route on east and west at 1:1."""
    return configs.ConfigFile(
        server={"log": configs.JSON_LOGS},
        providers={
            name: configs.provider("openai", f"{server.url}/{name}/v1", OPENAI_UPSTREAM_KEY, f"{name}/org")
            for name, server in simulators.items()
        },
        routes={
            "gpt-5.4": configs.route(*(configs.target(name, "gpt-5.4", weight=1) for name in PROVIDERS), retries=1)
        },
    )


@pytest.fixture(scope="module")
def proxy(simulators, start_proxy) -> Proxy:
    return start_proxy(config(simulators))


def first_turn(client: openai.OpenAI, text: str, *, stream: bool = False, **options) -> tuple[str, str]:
    """A new response: its id and the provider that made it."""
    raw = client.responses.with_raw_response.create(model="gpt-5.4", input=text, stream=stream, **options)
    if not stream:
        return raw.parse().id, raw.headers["x-tollgate-provider"]
    events = list(raw.parse())
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    return events[0].response.id, raw.headers["x-tollgate-provider"]


def answered_at(simulator: Server, tag: str) -> list[int]:
    """The statuses of the Responses requests carrying `tag` that reached this simulator."""
    return [r["status"] for r in upstream_requests(simulator, tag) if r.get("endpoint") == "responses"]


def test_every_follow_up_reaches_the_provider_that_made_its_response(proxy, simulators):
    tag = marker()
    client = proxy.client()
    firsts = [first_turn(client, f"turn one {tag}", stream=index % 2 == 1) for index in range(24)]
    made_at = {name: sum(1 for _, provider in firsts if provider == name) for name in PROVIDERS}
    assert made_at["east"] and made_at["west"]  # the 1:1 weights sent new conversations both ways

    for response_id, provider in firsts:
        raw = client.responses.with_raw_response.create(
            model="gpt-5.4", input=f"turn two {tag}", previous_response_id=response_id
        )
        assert raw.parse().previous_response_id == response_id
        assert raw.headers["x-tollgate-provider"] == provider
        assert raw.headers["x-tollgate-attempts"] == "1"

    for name in PROVIDERS:  # each simulator answered its own first turns and their follow-ups, and nothing else
        assert answered_at(simulators[name], tag) == [200] * (2 * made_at[name])


def test_a_conversation_stays_on_the_provider_that_holds_it(proxy, simulators):
    # A conversation made at the east account directly; Tollgate learns where it lives from its first answer.
    conversation = httpx.post(
        f"{simulators['east'].url}/east/v1/conversations",
        json={},
        headers={"authorization": f"Bearer {OPENAI_UPSTREAM_KEY}"},
    ).json()["id"]
    tag = marker()
    client = proxy.client()
    first = client.responses.with_raw_response.create(model="gpt-5.4", input=f"hi {tag}", conversation=conversation)
    assert first.headers["x-tollgate-provider"] == "east"  # west does not know it (404): on to east, unbound yet

    for turn in range(20):
        raw = client.responses.with_raw_response.create(
            model="gpt-5.4", input=f"turn {turn} {tag}", conversation={"id": conversation}
        )
        assert raw.parse().conversation.id == conversation
        assert (raw.headers["x-tollgate-provider"], raw.headers["x-tollgate-attempts"]) == ("east", "1")
    assert answered_at(simulators["east"], tag) == [200] * 21
    assert answered_at(simulators["west"], tag) in ([], [404])  # at most the very first, before it was bound


@pytest.fixture
def replicas(simulators, start_proxy):
    prefix = f"tollgate-e2e-{uuid.uuid4().hex[:10]}"
    shared = config(simulators).changed(state={"url": "redis://127.0.0.1:6379/0", "prefix": prefix})
    yield start_proxy(shared), start_proxy(shared)
    with redis.Redis.from_url("redis://127.0.0.1:6379/0") as client:
        keys = list(client.scan_iter(f"{prefix}:*"))
        assert keys  # the bindings were in Redis
        client.delete(*keys)


def test_a_follow_up_at_another_replica_reaches_the_same_provider(replicas, simulators):
    tag = marker()
    one, other = (replica.client() for replica in replicas)
    firsts = [first_turn(one, f"turn one {tag}", stream=index % 3 == 0) for index in range(20)]
    assert {provider for _, provider in firsts} == set(PROVIDERS)
    for response_id, provider in firsts:
        raw = other.responses.with_raw_response.create(
            model="gpt-5.4", input=f"turn two {tag}", previous_response_id=response_id
        )
        assert raw.headers["x-tollgate-provider"] == provider, raw.parse()
    made_at = {name: sum(1 for _, provider in firsts if provider == name) for name in PROVIDERS}
    for name in PROVIDERS:
        assert answered_at(simulators[name], tag) == [200] * (2 * made_at[name])


def test_a_failing_home_provider_is_one_error_naming_it_never_a_switch(proxy, simulators):
    tag = marker()
    client = proxy.client()
    response_id, home = first_turn(client, f"hi {tag}")
    elsewhere = "west" if home == "east" else "east"
    with pytest.raises(openai.InternalServerError) as failed:
        client.responses.create(
            model="gpt-5.4", input=f"again [sim fault=server_error] {tag}", previous_response_id=response_id
        )
    assert failed.value.status_code == 502
    message = failed.value.body["message"]
    assert f"Provider '{home}' holds '{response_id}'" in message and "cannot move to another provider" in message
    assert message.count(f"{home}: upstream_5xx") == 2  # the route's retry, at home
    assert answered_at(simulators[home], tag) == [200, 500, 500]
    assert answered_at(simulators[elsewhere], tag) == []


def test_a_home_provider_that_is_down_is_one_error_naming_it(simulators, start_proxy, tmp_path):
    north = start_simulator(tmp_path, "north")
    # North takes no new conversations on gpt-5.4 (weight 0), only their follow-ups; one is made on its own route.
    routed = config({**simulators, "north": north})
    routed.routes["gpt-5.4"]["targets"].append(configs.target("north", "gpt-5.4", weight=0))
    routed.routes["gpt-5.4-north"] = configs.route(configs.target("north", "gpt-5.4"))
    client = start_proxy(routed).client()
    made = client.responses.with_raw_response.create(model="gpt-5.4-north", input="hello")
    assert made.headers["x-tollgate-provider"] == "north"
    north.stop()

    tag = marker()
    with pytest.raises(openai.APIStatusError) as failed:
        client.responses.create(model="gpt-5.4", input=f"still there? {tag}", previous_response_id=made.parse().id)
    assert failed.value.status_code == 503
    message = failed.value.body["message"]
    assert f"Provider 'north' holds '{made.parse().id}'" in message and "could not be reached" in message
    assert message.count("north: connect_error") == 2
    for name in PROVIDERS:
        assert answered_at(simulators[name], tag) == []


def test_stored_responses_are_served_by_the_provider_that_made_them(proxy, simulators):
    tag = marker()
    client = proxy.client()
    made = client.responses.create(model="gpt-5.4", input=[{"role": "user", "content": f"one {tag}"}], background=True)
    raw = client.responses.with_raw_response.retrieve(made.id)
    home = raw.headers["x-tollgate-provider"]
    assert raw.parse().id == made.id and raw.headers["x-tollgate-route"] == "gpt-5.4"
    assert raw.headers["x-request-id"].startswith("req_")

    items = client.responses.input_items.list(made.id)
    assert [item.content[0].text for item in items.data] == [f"one {tag}"]
    assert client.responses.cancel(made.id).status == "completed"  # it had already finished
    client.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError) as gone:
        client.responses.retrieve(made.id)
    assert gone.value.response.headers["x-tollgate-provider"] == home  # its home says it is gone

    with pytest.raises(openai.NotFoundError) as unknown:
        client.responses.retrieve("resp_never_made")
    assert unknown.value.body["code"] == "response_not_found"

    paths = [r["path"] for name in PROVIDERS for r in upstream_requests(simulators[name], made.id)]
    assert len(paths) == 5 and all(path.startswith(f"/{home}/v1/responses/{made.id}") for path in paths)
    assert not any("resp_never_made" in str(r) for name in PROVIDERS for r in upstream_requests(simulators[name]))


def test_several_workers_without_redis_are_warned_that_follow_ups_may_go_astray(simulators, start_proxy):
    proxy = start_proxy(config(simulators), "--workers", "2")
    assert "follow-up may reach a worker that does not know it" in proxy.log()


def test_another_teams_key_cannot_reach_a_response_through_the_shared_upstream_key(simulators, start_proxy):
    # Both teams reach the upstream with the same provider key: only Tollgate can tell their responses apart.
    keys = {"growth-web": ("sk-growth-web", "growth"), "growth-ios": ("sk-growth-ios", "growth")}
    keys["search"] = ("sk-search", "search")
    listed = [configs.key(name, secret, team) for name, (secret, team) in keys.items()]
    proxy = start_proxy(config(simulators).changed(keys=listed))
    web, ios, search = (proxy.client(api_key=key) for key, _ in keys.values())
    tag = marker()
    response_id, home = first_turn(web, f"a growth plan {tag}")

    with pytest.raises(openai.BadRequestError) as refused:
        search.responses.create(model="gpt-5.4", input=f"show me {tag}", previous_response_id=response_id)
    assert refused.value.code == "previous_response_not_found"
    assert refused.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        search.responses.retrieve(response_id)
    with pytest.raises(openai.NotFoundError):
        search.responses.delete(response_id)

    # A key of the same team follows the conversation up and reads it.
    followed = ios.responses.with_raw_response.create(
        model="gpt-5.4", input=f"go on {tag}", previous_response_id=response_id
    )
    assert followed.headers["x-tollgate-provider"] == home
    assert ios.responses.retrieve(response_id).id == response_id
    # The other team's attempts never reached the upstream: first turn and the follow-up only.
    assert answered_at(simulators[home], tag) == [200, 200]
