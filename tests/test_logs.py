"""Log lines are one JSON object each, with the fields passed as `extra`."""

from __future__ import annotations

import logging

import orjson

from proxy.telemetry.logs import JsonFormatter


def test_a_record_becomes_one_json_line_with_its_extras():
    record = logging.LogRecord("tollgate", logging.WARNING, __file__, 1, "simulated %s", ("upstreams",), None)
    record.request_id = "req_1"
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = orjson.loads(line)
    assert entry["message"] == "simulated upstreams" and entry["level"] == "warning"
    assert entry["request_id"] == "req_1" and entry["ts"].endswith("Z")


def test_exceptions_are_kept_in_the_line():
    try:
        raise ValueError("bad")
    except ValueError as error:
        record = logging.LogRecord("tollgate", logging.ERROR, __file__, 1, "failed", (), (type(error), error, None))
    assert "ValueError: bad" in orjson.loads(JsonFormatter().format(record))["exception"]
