"""What a request's end costs the client: its answer goes out first, and its metrics and
access-log line are made on the loop's next turn, where the client no longer waits.
Served by uvicorn, as in production: its `send` does not yield while the socket takes
the bytes, which is what puts the answer ahead of them."""

from __future__ import annotations

import logging

import httpx
import uvicorn

from proxy.serving.loopback import LoopbackServer

from .one_route import COMPLETION, answering_app

LABELS = {"route": "gpt-5.4-mini", "provider": "up", "surface": "chat.completions", "status_class": "2xx"}


def test_the_answer_goes_out_before_its_metrics_and_access_line_are_made(tmp_path, caplog):
    app = answering_app(tmp_path)
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
