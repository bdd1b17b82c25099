"""The simulator keeps its Responses as OpenAI does: a follow-up of a response (or a
conversation) this upstream did not make is refused in OpenAI's words, and
GET/DELETE/input_items/cancel serve the ones it did. Driven through httpx's ASGI
transport; each upstream (path prefix) keeps its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from providers.simulator import create_app

AUTH = {"Authorization": "Bearer sk-test"}


@pytest.fixture
async def sim() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://sim", headers=AUTH) as http:
        yield http


async def respond(sim: httpx.AsyncClient, upstream: str = "east", **fields) -> httpx.Response:
    return await sim.post(f"/{upstream}/v1/responses", json={"model": "gpt-5.4", "input": "hello", **fields})


async def test_a_follow_up_is_answered_only_by_the_upstream_that_made_the_response(sim):
    first = (await respond(sim)).json()
    follow_up = await respond(sim, previous_response_id=first["id"])
    assert follow_up.status_code == 200
    assert follow_up.json()["previous_response_id"] == first["id"]

    elsewhere = await respond(sim, "west", previous_response_id=first["id"])
    assert elsewhere.status_code == 400
    assert elsewhere.json()["error"] == {
        "message": f"Previous response with id '{first['id']}' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }


async def test_a_streamed_response_is_kept_too(sim):
    async with sim.stream("POST", "/east/v1/responses", json={"model": "gpt-5.4", "input": "hi", "stream": True}) as r:
        events = [line for line in [line async for line in r.aiter_lines()] if line.startswith("data:")]
    created = orjson.loads(events[0][5:])
    assert created["type"] == "response.created"
    assert (await respond(sim, previous_response_id=created["response"]["id"])).status_code == 200


async def test_a_response_made_with_store_false_is_not_kept(sim):
    first = (await respond(sim, store=False)).json()
    assert (await sim.get(f"/east/v1/responses/{first['id']}")).status_code == 404
    assert (await respond(sim, previous_response_id=first["id"])).status_code == 400


async def test_retrieve_delete_input_items_and_cancel_serve_what_this_upstream_keeps(sim):
    made = (await respond(sim, input=[{"role": "user", "content": "one"}, {"role": "user", "content": "two"}])).json()
    path = f"/east/v1/responses/{made['id']}"

    retrieved = await sim.get(path)
    assert retrieved.status_code == 200 and retrieved.json()["id"] == made["id"]
    assert retrieved.json()["output"] == made["output"]
    assert (await sim.get(f"/west/v1/responses/{made['id']}")).status_code == 404

    newest_first = (await sim.get(f"{path}/input_items")).json()
    assert [item["content"][0]["text"] for item in newest_first["data"]] == ["two", "one"]
    page = (await sim.get(f"{path}/input_items", params={"order": "asc", "limit": 1})).json()
    assert [item["content"][0]["text"] for item in page["data"]] == ["one"] and page["has_more"] is True
    rest = (await sim.get(f"{path}/input_items", params={"order": "asc", "after": page["last_id"]})).json()
    assert [item["content"][0]["text"] for item in rest["data"]] == ["two"] and rest["has_more"] is False

    cancelled = await sim.post(f"{path}/cancel")
    assert cancelled.status_code == 400
    assert cancelled.json()["error"]["message"] == "Cannot cancel a synchronous response."

    deleted = await sim.delete(path)
    assert deleted.json() == {"id": made["id"], "object": "response", "deleted": True}
    missing = await sim.get(path)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == f"Response with id '{made['id']}' not found."
    assert (await respond(sim, previous_response_id=made["id"])).status_code == 400


async def test_a_background_response_can_be_cancelled_once_it_has_finished(sim):
    made = (await respond(sim, background=True)).json()
    cancelled = await sim.post(f"/east/v1/responses/{made['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "completed"


async def test_a_conversation_lives_on_the_upstream_that_made_it(sim):
    conversation = (await sim.post("/east/v1/conversations", json={"metadata": {"topic": "t"}})).json()
    assert conversation["id"].startswith("conv_") and conversation["object"] == "conversation"

    answered = await respond(sim, conversation=conversation["id"])
    assert answered.status_code == 200 and answered.json()["conversation"] == {"id": conversation["id"]}
    assert (await respond(sim, conversation={"id": conversation["id"]})).status_code == 200

    elsewhere = await respond(sim, "west", conversation=conversation["id"])
    assert elsewhere.status_code == 404
    assert elsewhere.json()["error"]["message"] == f"Conversation with id '{conversation['id']}' not found."

    both = await respond(sim, conversation=conversation["id"], previous_response_id=answered.json()["id"])
    assert both.status_code == 400 and both.json()["error"]["code"] == "mutually_exclusive_parameters"


async def test_azure_keeps_responses_per_resource(sim):
    made = await sim.post("/az/openai/deployments/my-gpt/responses?api-version=2025-04-01-preview", json={"input": "x"})
    retrieved = await sim.get(f"/az/openai/responses/{made.json()['id']}?api-version=2025-04-01-preview")
    assert retrieved.status_code == 200 and retrieved.json()["model"] == "my-gpt"


async def test_paths_it_does_not_serve_are_404s(sim):
    made = (await respond(sim)).json()
    assert (await sim.put(f"/east/v1/responses/{made['id']}")).status_code == 404
    assert (await sim.get(f"/east/v1/responses/{made['id']}/cancel")).status_code == 404
