"""Log lines are one JSON object each, with the fields passed as `extra`."""

from __future__ import annotations

import asyncio
import io
import logging
import weakref

import orjson

from proxy.telemetry.logs import JsonFormatter, LineWriter, json_writer_for


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


class Writes(io.StringIO):
    """A stream that keeps each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)


def writer_logger(stream: Writes) -> logging.Logger:
    handler = LineWriter(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"tollgate.test.{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


async def test_lines_logged_in_one_turn_of_the_loop_are_written_together_at_the_next():
    stream = Writes()
    logger = writer_logger(stream)
    for number in range(3):
        logger.info("line %d", number)
    assert stream.writes == []  # nothing yet: the request path does not wait on the write
    await asyncio.sleep(0)
    assert stream.writes == ["line 0\nline 1\nline 2\n"]
    logger.info("line 3")
    await asyncio.sleep(0)
    assert stream.writes[1:] == ["line 3\n"]


async def test_a_line_waiting_is_written_when_the_handler_is_flushed_as_at_exit():
    stream = Writes()
    logger = writer_logger(stream)
    logger.info("last words")
    logging.shutdown(handlerList=[weakref.ref(logger.handlers[0])])
    assert stream.writes == ["last words\n"]


def test_a_line_logged_off_the_loop_is_written_at_once():
    stream = Writes()
    writer_logger(stream).warning("starting")
    assert stream.writes == ["starting\n"]


def json_root(stream: Writes, monkeypatch) -> LineWriter:
    """Logging as `configure_logging(format="json")` leaves it, onto `stream`."""
    handler = LineWriter(stream)
    handler.setFormatter(JsonFormatter())
    monkeypatch.setattr(logging.root, "handlers", [handler])
    monkeypatch.setattr(logging.root, "filters", [])
    monkeypatch.setattr(logging.root, "level", logging.INFO)
    return handler


def test_the_access_line_written_without_a_record_is_the_line_logging_writes(monkeypatch):
    stream = Writes()
    handler = json_root(stream, monkeypatch)
    access = logging.getLogger("tollgate.access")
    fields = {"request_id": "req_1", "route": "chat", "status": 200, "cost_usd": "0.000012", "reason": None}
    assert json_writer_for(access, logging.INFO) is handler
    handler.write_json(logging.INFO, access.name, "request", fields)
    access.handle(access.makeRecord(access.name, logging.INFO, "", 0, "request", (), None, extra=fields))
    fast, logged = (orjson.loads(line) for line in stream.writes)
    assert fast.pop("ts")[:19] == logged.pop("ts")[:19]
    assert list(fast.items()) == list(logged.items())  # the same fields, in the same order


def test_a_handler_or_filter_added_anywhere_sends_the_access_line_through_logging(monkeypatch):
    stream = Writes()
    json_root(stream, monkeypatch)
    access = logging.getLogger("tollgate.access")
    monkeypatch.setattr(logging.getLogger("tollgate"), "handlers", [logging.NullHandler()])
    assert json_writer_for(access, logging.INFO) is None
    monkeypatch.setattr(logging.getLogger("tollgate"), "handlers", [])
    monkeypatch.setattr(logging.root, "handlers", [*logging.root.handlers, logging.NullHandler()])  # e.g. caplog
    assert json_writer_for(access, logging.INFO) is None
    monkeypatch.setattr(logging.root, "handlers", logging.root.handlers[:1])
    monkeypatch.setattr(access, "filters", [lambda record: True])
    assert json_writer_for(access, logging.INFO) is None
    monkeypatch.setattr(access, "filters", [])
    assert json_writer_for(access, logging.DEBUG) is None  # below the level: nothing is written at all
    logging.root.handlers[0].setFormatter(logging.Formatter("%(message)s"))  # server.log.format: text
    assert json_writer_for(access, logging.INFO) is None
