"""The simulator bills what it serves and reports it as OpenAI's organization Costs API
and Usage API (images) do: in-process, through httpx's ASGI transport."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from providers.image_tokens import image_output_tokens, text_tokens
from providers.simulator import create_app
from providers.simulator.app import Simulator

AUTH = {"Authorization": "Bearer sk-admin-test"}
TODAY = int(dt.datetime.combine(dt.datetime.now(dt.UTC).date(), dt.time(), dt.UTC).timestamp())


@pytest.fixture
def app() -> Simulator:
    return create_app()


@pytest.fixture
async def client(app: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim", headers=AUTH) as http:
        yield http


async def generate(client: httpx.AsyncClient, upstream: str, prompt: str, **fields) -> httpx.Response:
    body = {"model": "gpt-image-2", "prompt": prompt, "size": "1024x1024", "quality": "low", **fields}
    return await client.post(f"/{upstream}/v1/images/generations", json=body)


def usd(value: float) -> Decimal:
    return Decimal(str(value))


async def test_costs_are_the_official_price_of_what_was_served_per_upstream_and_line_item(client):
    await generate(client, "org-a", "a lighthouse")
    await generate(client, "org-a", "two boats", n=2, quality="medium")
    await generate(client, "org-b", "not org-a's")
    await generate(client, "org-a", "refused [sim fault=moderation]")
    page = (
        await client.get(
            "/org-a/v1/organization/costs", params={"start_time": TODAY, "group_by": "line_item", "limit": 2}
        )
    ).json()
    assert page["object"] == "page" and page["has_more"] is False and page["next_page"] is None
    (bucket,) = page["data"]
    assert (bucket["object"], bucket["start_time"], bucket["end_time"]) == ("bucket", TODAY, TODAY + 86_400)
    amounts = {result["line_item"]: usd(result["amount"]["value"]) for result in bucket["results"]}
    assert {result["object"] for result in bucket["results"]} == {"organization.costs.result"}
    assert {result["amount"]["currency"] for result in bucket["results"]} == {"usd"}
    prompt_tokens = text_tokens("a lighthouse") + text_tokens("two boats")
    output = image_output_tokens("gpt-image-2", "1024x1024", "low") + 2 * image_output_tokens(
        "gpt-image-2", "1024x1024", "medium"
    )
    # gpt-image-2 at $5/M text input and $30/M image output; the refusal billed nothing
    assert amounts == {
        "gpt-image-2, input": Decimal(prompt_tokens * 5) / 1_000_000,
        "gpt-image-2, output": Decimal(output * 30) / 1_000_000,
    }
    (total,) = (await client.get("/org-a/v1/organization/costs", params={"start_time": TODAY})).json()["data"][0][
        "results"
    ]
    assert total["line_item"] is None and usd(total["amount"]["value"]) == sum(amounts.values())


async def test_the_images_usage_counts_requests_and_images_by_model_size_and_source(client):
    await generate(client, "org-c", "one")
    await generate(client, "org-c", "two", n=2)
    await generate(client, "org-c", "wide", size="1536x1024")
    page = (
        await client.get(
            "/org-c/v1/organization/usage/images",
            params={"start_time": TODAY, "group_by[]": ["model", "size"]},
        )
    ).json()
    results = {(r["model"], r["size"]): (r["num_model_requests"], r["images"]) for r in page["data"][0]["results"]}
    assert results == {("gpt-image-2", "1024x1024"): (2, 3), ("gpt-image-2", "1536x1024"): (1, 1)}
    (result,) = page["data"][0]["results"][:1]
    assert result["object"] == "organization.usage.images.result" and result["source"] is None  # not grouped by


async def test_pages_follow_next_page_one_bucket_per_day(client):
    start = TODAY - 3 * 86_400
    first = (await client.get("/org-d/v1/organization/costs", params={"start_time": start, "limit": 2})).json()
    assert [bucket["start_time"] for bucket in first["data"]] == [start, start + 86_400]
    assert first["has_more"] is True
    second = (
        await client.get(
            "/org-d/v1/organization/costs", params={"start_time": start, "limit": 2, "page": first["next_page"]}
        )
    ).json()
    assert [bucket["start_time"] for bucket in second["data"]] == [start + 2 * 86_400, TODAY]
    assert second["has_more"] is False and all(bucket["results"] == [] for bucket in first["data"] + second["data"])


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({}, "start_time"),
        ({"start_time": TODAY, "bucket_width": "1h"}, "bucket_width"),
        ({"start_time": TODAY, "group_by": "model"}, "group_by"),
        ({"start_time": TODAY, "limit": 500}, "limit"),
    ],
)
async def test_a_bad_report_query_is_a_400_in_openais_shape(client, params, param):
    response = await client.get("/org-f/v1/organization/costs", params=params)
    assert response.status_code == 400 and response.json()["error"]["param"] == param


async def test_the_reports_need_a_key(client):
    response = await client.get(
        "/org-g/v1/organization/costs", params={"start_time": TODAY}, headers={"Authorization": ""}
    )
    assert response.status_code == 401
