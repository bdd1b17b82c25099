"""The writer's reading of a batch of journal lines: each request's last snapshot wins,
whether or not its lines come as Tollgate writes them (the id first)."""

from __future__ import annotations

import orjson

from proxy.ledger import Charge, LedgerRow, utc_now
from proxy.ledger.writer_process import _LEADS, _latest_snapshots


def line(row: LedgerRow) -> bytes:
    return orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)


def test_a_journal_line_starts_with_the_rows_id():
    row = LedgerRow(request_id="req_ab12", created_at=utc_now(), surface="chat.completions")
    assert line(row).startswith(_LEADS + b'req_ab12"')


def test_each_requests_last_line_wins_and_only_it_is_kept():
    first = LedgerRow(request_id="req_1", created_at=utc_now(), surface="chat.completions", route="r")
    second = LedgerRow(request_id="req_2", created_at=utc_now(), surface="images.generate", route="r")
    finished = LedgerRow(**{**first.record(), "status": "ok", "http_status": 200, "charges": []})
    finished.charges = [Charge("openai", "openai/org", "openai-official", "official", 1_500, "usage")]
    # Written by something else: the same row with its keys in another order.
    reordered = orjson.dumps(dict(reversed(list({**second.record(), "status": "error"}.items())))) + b"\n"
    latest = _latest_snapshots(line(first) + line(second) + line(finished) + reordered)
    assert list(latest) == ["req_1", "req_2"]
    assert latest["req_1"] == orjson.loads(line(finished))
    assert latest["req_1"]["charges"][0]["cost_nanousd"] == 1_500
    assert latest["req_2"]["status"] == "error" and latest["req_2"]["surface"] == "images.generate"
