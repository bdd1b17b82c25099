"""A 2 MB image answer through the proxy, served by uvicorn as in production: the
upstream writes it in many pieces, and the proxy relays the chunks it read as they
came (more than one ASGI message, the whole length declared first), byte for byte,
priced from the usage at its end; serving many leaves no memory behind."""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import os
import tracemalloc
from collections.abc import Iterator
from decimal import Decimal

import httpx
import orjson
import pytest
import uvicorn

from providers.answer_body import AnswerBody
from providers.types import Surface
from proxy.config import parse_config
from proxy.http.app import create_app
from proxy.ledger import from_nano, to_nano
from proxy.pricing.usage import usage_from_body
from proxy.serving.gateway import GatewayFactory
from proxy.serving.loopback import LoopbackServer
from proxy.state import MemoryCounters

KEY = "sk-large-answers-3c9e"
PIECE = 64 * 1024
PROVIDER = "api_key: sk-up, billing_owner: openai/org-test, price_table: openai-official"

ANSWER = orjson.dumps(
    {
        "created": 1_790_000_000,
        "data": [{"b64_json": base64.b64encode(os.urandom(3 * 512 * 1024)).decode()}],
        "output_format": "png",
        "quality": "high",
        "size": "1024x1024",
        "usage": {"input_tokens": 20, "output_tokens": 4160},
    }
)


async def upstream(scope, receive, send) -> None:
    """Every POST is answered with ANSWER in 64 KiB messages; under /pieces with a pause
    after each, so that the proxy reads it in many chunks."""
    assert scope["type"] == "http"
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    pause = scope["path"].startswith("/pieces/")
    for at in range(0, len(ANSWER), PIECE):
        await send({"type": "http.response.body", "body": ANSWER[at : at + PIECE], "more_body": True})
        if pause:
            await asyncio.sleep(0.002)
    await send({"type": "http.response.body", "body": b""})


class Sent:
    """The ASGI app in between: how many body messages each answer went out in."""

    def __init__(self, app) -> None:
        self.app, self.messages = app, []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        counted = [0]

        async def counting(message) -> None:
            if message["type"] == "http.response.body":
                counted[0] += 1
                if not message.get("more_body"):  # counted before it is sent: the client may look at once
                    self.messages.append(counted[0])
            await send(message)

        await self.app(scope, receive, counting)


def config(upstream_url: str, ledger_dir: str):
    return parse_config(
        f"""
ledger:
  url: sqlite:///{ledger_dir}/ledger.db
  journal_dir: {ledger_dir}/journal
providers:
  pieces: {{kind: openai, base_url: "{upstream_url}/pieces/v1", {PROVIDER}}}
  whole: {{kind: openai, base_url: "{upstream_url}/whole/v1", {PROVIDER}}}
routes:
  gpt-image-2:
    targets: [{{provider: pieces, model: gpt-image-2}}]
  images-fast:
    targets: [{{provider: whole, model: gpt-image-2}}]
keys:
  - {{id: tests, key: {KEY}, team: tests}}
""",
        {},
    )


def serve(app, name: str) -> LoopbackServer:
    return LoopbackServer(
        lambda host, port: uvicorn.Config(
            app, host=host, port=port, http="httptools", log_config=None, lifespan="auto", access_log=False
        ),
        name=name,
    )


@pytest.fixture(scope="module")
def proxy(tmp_path_factory) -> Iterator[tuple[str, Sent]]:
    above = serve(upstream, "upstream")
    loaded = config(above.start(), str(tmp_path_factory.mktemp("ledger")))
    factory = GatewayFactory(simulate_all=False, counters=MemoryCounters())
    sent = Sent(create_app(lambda: factory.build(loaded)))
    server = serve(sent, "proxy")
    try:
        yield server.start(), sent
    finally:
        server.stop()
        above.stop()


def generate(url: str, model: str = "gpt-image-2") -> httpx.Response:
    return httpx.post(
        f"{url}/v1/images/generations",
        json={"model": model, "prompt": "a kite", "quality": "high", "size": "1024x1024"},
        headers={"authorization": f"Bearer {KEY}"},
        timeout=30,
    )


def test_a_large_answer_read_in_chunks_goes_out_as_them_byte_for_byte_with_its_length(proxy, caplog):
    url, sent = proxy
    with caplog.at_level(logging.INFO, logger="tollgate.access"):
        answer = generate(url)
    assert answer.status_code == 200
    assert answer.content == ANSWER
    assert answer.headers["content-length"] == str(len(ANSWER)) and "transfer-encoding" not in answer.headers
    assert sent.messages[-1] > 2  # relayed in the chunks it was read in, not joined into one message
    # Priced from the usage at the answer's end, and the row says what the client was told.
    usage = usage_from_body(Surface.IMAGES_GENERATE, AnswerBody.of(ANSWER), model="gpt-image-2", image_model=None)
    assert usage is not None and usage[0].images == 1 and usage[0].image_output == 4160
    (line,) = [record for record in caplog.records if record.request_id == answer.headers["x-request-id"]]
    assert (line.cost_basis, line.cost_usd) == ("usage", answer.headers["x-tollgate-cost-usd"])
    assert Decimal(line.cost_usd) > 0


def test_both_ways_of_arriving_bill_the_same(proxy):
    url, _ = proxy
    pieces, whole = generate(url), generate(url, "images-fast")
    assert pieces.content == whole.content == ANSWER
    assert pieces.headers["x-tollgate-cost-usd"] == whole.headers["x-tollgate-cost-usd"]
    assert from_nano(to_nano(Decimal(pieces.headers["x-tollgate-cost-usd"]))) == Decimal(
        pieces.headers["x-tollgate-cost-usd"]
    )


def test_serving_many_large_answers_keeps_none_of_them(proxy):
    url, _ = proxy
    for _ in range(5):  # pools, caches and the first allocations settle
        assert generate(url, "images-fast").status_code == 200
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(30):
            answer = generate(url, "images-fast")
            assert answer.status_code == 200 and len(answer.content) == len(ANSWER)
            del answer
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 2 * len(ANSWER), f"{held:,} bytes still held after 30 answers of {len(ANSWER):,}"
