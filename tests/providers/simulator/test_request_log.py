"""The simulator's log of what reached the upstream (providers/simulator/request_log.py),
read and reset through `/_sim/requests` and `/_sim/reset`."""

from __future__ import annotations

import httpx

from providers.simulator.app import Simulator

from .helpers import AUTH, chat, png_bytes


async def test_request_log_records_what_reached_the_upstream(client: httpx.AsyncClient) -> None:
    await client.post(
        "/openai/v1/chat/completions",
        json={"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": "Bearer sk-openai-key", "X-Trace": "t1"},
    )
    await client.post(
        "/acme/openai/deployments/acme-image/images/edits?api-version=2025-04-01",
        data={"prompt": "edit"},
        files=[
            ("image[]", ("a.png", png_bytes(64, 64), "image/png")),
            ("image[]", ("b.png", png_bytes(32, 32), "image/png")),
        ],
        headers={"Authorization": "", "api-key": "acme-key"},
    )
    log = (await client.get("/_sim/requests")).json()["requests"]
    chat, edit = log
    assert chat["headers"]["authorization"] == "Bearer sk-openai-key"
    assert chat["headers"]["x-trace"] == "t1"
    assert (chat["upstream"], chat["model"], chat["endpoint"], chat["status"]) == (
        "openai",
        "gpt-4.1",
        "chat/completions",
        200,
    )
    assert chat["body_size"] == int(chat["headers"]["content-length"])
    assert (edit["upstream"], edit["model"], edit["query"]) == ("acme", "acme-image", "api-version=2025-04-01")
    assert edit["headers"]["api-key"] == "acme-key"
    assert edit["content_type"].startswith("multipart/form-data")
    assert edit["multipart"]["fields"] == ["prompt", "image[]", "image[]"]
    assert edit["fields"] == {"prompt": "edit"}
    assert chat["fields"] == {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
    assert [(part["field"], part["filename"]) for part in edit["multipart"]["files"]] == [
        ("image[]", "a.png"),
        ("image[]", "b.png"),
    ]
    only_acme = (await client.get("/_sim/requests", params={"upstream": "acme"})).json()["requests"]
    assert [entry["request_id"] for entry in only_acme] == [edit["request_id"]]
    assert (await client.post("/_sim/reset")).status_code == 200
    assert (await client.get("/_sim/requests")).json()["requests"] == []


async def test_request_log_leaves_out_large_json_bodies(client: httpx.AsyncClient) -> None:
    big = "x" * 40_000 + " [sim id=big]"
    await client.post("/v1/chat/completions", json=chat(big))
    [entry] = (await client.get("/_sim/requests")).json()["requests"]
    assert entry["fields"] is None and entry["body_size"] > 40_000
    assert entry["markers"] == ["[sim id=big]"]


async def test_request_log_is_bounded() -> None:
    app = Simulator(log_limit=3)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim", headers=AUTH) as http:
        for _ in range(5):
            await http.get("/v1/models")
        assert len((await http.get("/_sim/requests")).json()["requests"]) == 3
