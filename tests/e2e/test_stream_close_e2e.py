"""Streams the client closes before they complete, through a real `tollgate serve`
driven by the official SDK, the simulator streaming slowly upstream: the row says
`client_closed` and costs what was relayed (not the estimate), the failure metric
and the access log say so, the upstream is hung up on at once and sends nothing
more, and the budget is charged the closed stream's cost."""

from __future__ import annotations

import io
import math
import re
import time
from decimal import Decimal

import httpx
import orjson
import pytest
from PIL import Image

from providers.image_tokens import image_input_tokens

from .configs import ConfigFile, key, routed
from .harness import CLIENT_KEY, marker, marker_id, upstream_requests
from .test_admin_e2e import finished_row

ADMIN_KEY = "adm-stream-close-e2e"
FRUGAL_KEY = "sk-frugal-stream-close-e2e"
PACE = 1.0  # seconds between upstream events: the client closes well before the next one
PER_MILLION = Decimal(1_000_000)
# gpt-image-2 on openai-official, USD per 1M tokens
TEXT_INPUT, IMAGE_INPUT, IMAGE_OUTPUT = Decimal(5), Decimal(8), Decimal(30)


def closing_config(simulator_url: str) -> ConfigFile:
    return (
        routed(simulator_url)
        .with_server(admin_key=ADMIN_KEY)
        .changed(
            keys=[
                key("web", CLIENT_KEY, "growth"),
                key("frugal", FRUGAL_KEY, "thrift", budgets={"daily_usd": Decimal("0.007")}),
            ]
        )
    )


@pytest.fixture(scope="module")
def closing(simulator, start_proxy):
    return start_proxy(closing_config(simulator.url))


def row_of(proxy, request_id: str) -> dict:
    with httpx.Client(base_url=proxy.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as admin:
        return finished_row(admin, request_id)


def client_closed_failures(proxy, route: str) -> float:
    text = httpx.get(f"{proxy.url}/metrics").text
    pattern = rf'^tollgate_request_failures_total\{{[^}}]*reason="client_closed",route="{route}"\}} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, text, re.M))


def delivery_upstream(simulator, text: str, timeout_s: float = 10) -> dict:
    """What the simulator sent of the stream whose request carried `text`, once it has stopped."""
    deadline = time.monotonic() + timeout_s
    while True:
        (seen,) = upstream_requests(simulator, marker_id(text))
        if seen["stream"] is not None:
            return seen["stream"]
        assert time.monotonic() < deadline, seen
        time.sleep(0.05)


def access_line(proxy, request_id: str) -> dict:
    lines = [orjson.loads(line) for line in proxy.log().splitlines() if line.startswith("{")]
    (line,) = [line for line in lines if line.get("logger") == "tollgate.access" and line["request_id"] == request_id]
    return line


def tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def assert_hung_up_at_once(delivery: dict, *, events: int, sent: int, closed_at: float) -> None:
    """The upstream saw the connection close right after the client left, and sent nothing more."""
    assert (delivery["events"], delivery["sent"]) == (events, sent)
    assert delivery["client_closed_at"] is not None
    assert 0 <= delivery["client_closed_at"] - closed_at < PACE / 2


def lines_of(row: dict) -> list[tuple[str, int]]:
    return [(line["item"], line["quantity"]) for line in row["cost_lines"]]


def test_a_chat_stream_closed_after_its_first_words_costs_what_was_relayed(closing, simulator):
    content = f"tell me a long story about lighthouses {marker(interval=PACE)}"
    before = client_closed_failures(closing, "gpt-5.4-mini")
    raw = closing.client().chat.completions.with_raw_response.create(
        model="gpt-5.4-mini", stream=True, messages=[{"role": "user", "content": content}]
    )
    stream = raw.parse()
    chunks = iter(stream)
    relayed = "".join(next(chunks).choices[0].delta.content or "" for _ in range(2))  # the role, the first words
    closed_at = time.time()
    stream.close()

    request_id = raw.headers["x-request-id"]
    row = row_of(closing, request_id)
    assert (row["status"], row["http_status"], row["error_type"]) == ("client_closed", 200, "client_closed")
    assert row["cost_basis"] == "partial_estimate" and row["charges"][0]["cost_basis"] == "partial_estimate"
    assert relayed.startswith("Simulated reply") and (row["input_text_tokens"], row["output_text_tokens"]) == (
        tokens(content),
        tokens(relayed),
    )
    assert lines_of(row) == [("text_input tokens", tokens(content)), ("text_output tokens", tokens(relayed))]
    cost, estimate = Decimal(row["cost_usd"]), Decimal(row["estimated_cost_usd"])
    assert cost == sum(Decimal(line["amount_usd"]) for line in row["cost_lines"])
    assert cost * 50 < estimate  # the estimate assumed 1,000 output tokens; 6 were relayed

    assert client_closed_failures(closing, "gpt-5.4-mini") == before + 1
    with httpx.Client(base_url=closing.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as admin:
        listed = admin.get("/admin/requests", params={"status": "client_closed", "route": "gpt-5.4-mini"}).json()
    assert request_id in [row["request_id"] for row in listed["data"]]
    access = access_line(closing, request_id)
    assert (access["outcome"], access["reason"], access["cost_basis"]) == (
        "client_closed",
        "client_closed",
        "partial_estimate",
    )
    # role, 4 pieces, finish, usage (asked for by the proxy), [DONE]: 2 went out
    assert_hung_up_at_once(delivery_upstream(simulator, content), events=8, sent=2, closed_at=closed_at)


def test_a_responses_stream_closed_after_its_first_text_costs_what_was_relayed(closing, simulator):
    prompt = f"write a poem about a kite {marker(interval=PACE)}"
    before = client_closed_failures(closing, "gpt-5.4")
    raw = closing.client().responses.with_raw_response.create(model="gpt-5.4", input=prompt, stream=True)
    stream = raw.parse()
    kinds = []
    for event in stream:
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            relayed = event.delta
            break
    closed_at = time.time()
    stream.close()
    assert kinds[:2] == ["response.created", "response.in_progress"] and len(kinds) == 5

    row = row_of(closing, raw.headers["x-request-id"])
    assert (row["status"], row["cost_basis"]) == ("client_closed", "partial_estimate")
    assert lines_of(row) == [("text_input tokens", tokens(prompt)), ("text_output tokens", tokens(relayed))]
    assert Decimal(row["cost_usd"]) * 50 < Decimal(row["estimated_cost_usd"])
    assert client_closed_failures(closing, "gpt-5.4") == before + 1
    # 12 events: created, in_progress, item and part added, 4 deltas, text and part and item done, completed
    assert_hung_up_at_once(delivery_upstream(simulator, prompt), events=12, sent=5, closed_at=closed_at)


EVENT_PREFIX = {"generate": "image_generation", "edit": "image_edit"}


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (20, 90, 160)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("surface", ["generate", "edit"])
def test_an_image_stream_closed_after_two_partial_images_costs_100_tokens_each(closing, simulator, surface):
    prompt = f"a heron at dusk {marker(interval=PACE)}"
    before = client_closed_failures(closing, "gpt-image-2")
    settings = {"model": "gpt-image-2", "prompt": prompt, "size": "1024x1024", "quality": "low", "partial_images": 3}
    images = closing.client().images.with_raw_response
    if surface == "generate":
        raw = images.generate(**settings, stream=True)
        image_input = 0
    else:
        raw = images.edit(**settings, image=("in.png", png(1024, 1024), "image/png"), stream=True)
        image_input = image_input_tokens(1024, 1024)
    stream = raw.parse()
    events = iter(stream)
    kinds = [next(events).type for _ in range(2)]
    closed_at = time.time()
    stream.close()
    assert kinds == [f"{EVENT_PREFIX[surface]}.partial_image"] * 2

    row = row_of(closing, raw.headers["x-request-id"])
    assert (row["status"], row["cost_basis"], row["output_image_tokens"]) == ("client_closed", "partial_estimate", 200)
    assert not row["images"]  # no image was completed
    expected = (tokens(prompt) * TEXT_INPUT + image_input * IMAGE_INPUT + 200 * IMAGE_OUTPUT) / PER_MILLION
    assert Decimal(row["cost_usd"]) == expected
    # the estimate: a whole low 1024x1024 image (196 tokens) and its three partial images
    whole = (tokens(prompt) * TEXT_INPUT + image_input * IMAGE_INPUT + (196 + 300) * IMAGE_OUTPUT) / PER_MILLION
    assert Decimal(row["estimated_cost_usd"]) == whole
    assert client_closed_failures(closing, "gpt-image-2") == before + 1
    # three partial images and the image: 2 went out
    assert_hung_up_at_once(delivery_upstream(simulator, prompt), events=4, sent=2, closed_at=closed_at)


def test_the_budget_is_charged_what_the_closed_stream_cost_not_its_estimate(closing):
    """The key's budget ($0.007) holds one request's estimate ($0.0045) and not two: had the
    closed stream been settled at its estimate, the next request would be refused."""
    frugal = closing.client(api_key=FRUGAL_KEY)
    content = f"tell me a story {marker(interval=PACE)}"
    raw = frugal.chat.completions.with_raw_response.create(
        model="gpt-5.4-mini", stream=True, messages=[{"role": "user", "content": content}]
    )
    stream = raw.parse()
    next(iter(stream))
    stream.close()
    row = row_of(closing, raw.headers["x-request-id"])
    assert row["status"] == "client_closed" and Decimal(row["estimated_cost_usd"]) > Decimal("0.0035")
    assert Decimal(row["cost_usd"]) < Decimal("0.0001")

    answer = frugal.chat.completions.with_raw_response.create(
        model="gpt-5.4-mini", messages=[{"role": "user", "content": "tell me a story"}]
    )
    assert answer.status_code == 200
