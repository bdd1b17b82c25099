"""What a request journals: its row as it starts and as it ends, each line holding
exactly the row's fields in their order (the id first, which the writer reads off
the line's start) and each charge exactly a charge's. A row keeps its fields in a
__dict__, which orjson writes as it stands, so nothing else may ever be set on one."""

from __future__ import annotations

from dataclasses import fields

import orjson
from starlette.testclient import TestClient

from proxy.ledger import Charge, LedgerRow

from .one_route import answering_app


def test_a_request_journals_exactly_the_rows_fields_as_it_starts_and_ends(tmp_path):
    with TestClient(answering_app(tmp_path)) as client:
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
