"""The app with one route whose provider answers every chat request at once with the same
completion: for tests of what the app does around an answer, not of a provider."""

from __future__ import annotations

from pathlib import Path

import orjson
from starlette.applications import Starlette

from providers.answer_body import AnswerBody
from providers.base import Provider, UpstreamReply
from providers.types import Call
from proxy.config import parse_config
from proxy.http.app import create_app
from proxy.serving.gateway import Gateway

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
ROUTE = "gpt-5.4-mini"
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": ROUTE,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}


class AnswersAtOnce(Provider):
    async def send(self, call: Call, model: str, timeout_s: float) -> UpstreamReply:
        body = AnswerBody.of(orjson.dumps(COMPLETION))
        return UpstreamReply(200, {"content-type": "application/json", "x-request-id": "up_1"}, body=body)


def answering_app(ledger_dir: Path) -> Starlette:
    """The app, its ledger in `ledger_dir`."""
    loaded = parse_config(CONFIG, {"LEDGER_DIR": str(ledger_dir)})
    return create_app(lambda: Gateway(loaded, {"up": AnswersAtOnce("up")}, simulated={}))
