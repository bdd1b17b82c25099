"""What a request's end costs the client: its answer goes out first, and its metrics and
access-log line are made on the loop's next turn, where the client no longer waits.
Served by uvicorn, as in production: its `send` does not yield while the socket takes
the bytes, which is what puts the answer ahead of them."""

from __future__ import annotations

import logging

import httpx
import orjson
import uvicorn

from providers.answer_body import AnswerBody
from providers.base import Provider, UpstreamReply
from providers.types import Call
from proxy.config import parse_config
from proxy.http.app import create_app
from proxy.serving.gateway import Gateway
from proxy.serving.loopback import LoopbackServer

CONFIG = """
ledger:
  url: sqlite:///${LEDGER_DIR}/ledger.db
  journal_dir: ${LEDGER_DIR}/journal
providers:
  up: {kind: openai, api_key: sk-up, billing_owner: openai/org-test, price_table: openai-official}
routes:
  gpt-5.4-mini:
    targets: [{provider: up, model: gpt-5.4-mini}]
"""
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-5.4-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}
LABELS = {"route": "gpt-5.4-mini", "provider": "up", "surface": "chat.completions", "status_class": "2xx"}


class AnswersAtOnce(Provider):
    async def send(self, call: Call, model: str, timeout_s: float) -> UpstreamReply:
        body = AnswerBody.of(orjson.dumps(COMPLETION))
        return UpstreamReply(200, {"content-type": "application/json", "x-request-id": "up_1"}, body=body)


def test_the_answer_goes_out_before_its_metrics_and_access_line_are_made(tmp_path, caplog):
    loaded = parse_config(CONFIG, {"LEDGER_DIR": str(tmp_path)})
    app = create_app(lambda: Gateway(loaded, {"up": AnswersAtOnce("up")}, simulated={}))
    when_sent: dict[str, object] = {}

    async def watching(scope, receive, send) -> None:
        async def watched(message) -> None:
            final = message["type"] == "http.response.body" and not message.get("more_body")
            if final and scope["path"] == "/v1/chat/completions":
                registry = app.state.tollgate.metrics.registry
                when_sent["requests"] = registry.get_sample_value("tollgate_requests_total", LABELS)
                when_sent["lines"] = [r for r in caplog.records if r.name == "tollgate.access"]
            await send(message)

        await app(scope, receive, watched)

    server = LoopbackServer(
        lambda host, port: uvicorn.Config(watching, host=host, port=port, http="httptools", log_config=None),
        name="proxy",
    )
    url = server.start()
    try:
        with caplog.at_level(logging.INFO, logger="tollgate.access"):
            answer = httpx.post(f"{url}/v1/chat/completions", json={"model": "gpt-5.4-mini", "messages": []})
            exposition = httpx.get(f"{url}/metrics").text
    finally:
        server.stop()
    assert answer.status_code == 200 and answer.json() == COMPLETION
    assert when_sent == {"requests": None, "lines": []}  # nothing counted or logged yet
    series = 'tollgate_requests_total{provider="up",route="gpt-5.4-mini",status_class="2xx",surface="chat.completions"}'
    assert f"{series} 1.0" in exposition
    (line,) = [r for r in caplog.records if r.name == "tollgate.access"]
    assert line.request_id == answer.headers["x-request-id"]
    assert line.cost_usd == answer.headers["x-tollgate-cost-usd"]
