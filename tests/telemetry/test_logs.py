"""Log lines are one JSON object each, with the fields passed as `extra`."""

from __future__ import annotations

import asyncio
import io
import logging
import weakref

import orjson

from proxy.telemetry.logs import JsonFormatter, LineWriter


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
