"""What a request journals: its row as it starts and as it ends, each line holding
exactly the row's fields in their order (the id first, which the writer reads off
the line's start) and each charge exactly a charge's. A row keeps its fields in a
__dict__, which orjson writes as it stands, so nothing else may ever be set on one."""

from __future__ import annotations

from dataclasses import fields

import orjson
from starlette.testclient import TestClient

from providers.answer_body import AnswerBody
from providers.base import Provider, UpstreamReply
from providers.types import Call
from proxy.config import parse_config
from proxy.http.app import create_app
from proxy.ledger import Charge, LedgerRow
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
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}


class Answers(Provider):
    async def send(self, call: Call, model: str, timeout_s: float) -> UpstreamReply:
        return UpstreamReply(200, {"content-type": "application/json"}, body=AnswerBody.of(orjson.dumps(COMPLETION)))


def test_a_request_journals_exactly_the_rows_fields_as_it_starts_and_ends(tmp_path):
    loaded = parse_config(CONFIG, {"LEDGER_DIR": str(tmp_path)})
    app = create_app(lambda: Gateway(loaded, {"up": Answers("up")}, simulated={}))
    with TestClient(app) as client:
        answer = client.post("/v1/chat/completions", json={"model": "gpt-5.4-mini", "messages": []})
        assert answer.status_code == 200
        lines = [
            orjson.loads(line)
            for segment in sorted((tmp_path / "journal").glob("*.jsonl"))
            for line in segment.read_bytes().splitlines()
        ]
    request_id = answer.headers["x-request-id"]
    mine = [line for line in lines if line["request_id"] == request_id]
    assert [line["status"] for line in mine] == ["started", "ok"]
    row_fields = [field.name for field in fields(LedgerRow)]
    assert all(list(line) == row_fields for line in mine)
    (charge,) = mine[-1]["charges"]
    assert list(charge) == [field.name for field in fields(Charge)]
    assert charge["cost_nanousd"] == mine[-1]["cost_nanousd"] > 0
