"""Logging set-up: one JSON object per line (or plain text), never a secret."""

from __future__ import annotations

import logging
import signal
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

import orjson

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._second: tuple[int, str] = (-1, "")  # the timestamp up to the second, made once a second

    def format(self, record: logging.LogRecord) -> str:
        extra = {key: value for key, value in record.__dict__.items() if key not in _STANDARD}
        if record.exc_info:
            extra["exception"] = self.formatException(record.exc_info)
        return self.line(record.created, record.levelname, record.name, record.getMessage(), extra)

    def line(self, created: float, level: str, logger: str, message: str, extra: dict[str, Any]) -> str:
        second = int(created)
        if second != self._second[0]:
            self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        entry = {
            "ts": f"{self._second[1]}.{int((created - second) * 1000):03d}Z",
            "level": level.lower(),
            "logger": logger,
            "message": message,
            **extra,
        }
        return orjson.dumps(entry, default=str).decode()


class LineWriter(logging.StreamHandler):
    """Lines logged on the event loop are written together at its next turn: one
    write for the access lines of every request that ended meanwhile, rather than one
    each. Lines logged elsewhere (start-up, a worker thread) are written at once,
    after any waiting; `flush` (at exit too) writes what waits."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._waiting: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._write(self.format(record))
        except Exception:
            self.handleError(record)

    def write_json(self, level: int, logger: str, message: str, extra: dict[str, Any]) -> None:
        """The line `emit` would write for such a record, made without the record: one
        per request (the access log) skips the LogRecord, the handler's lock and its
        filters, which cost more than the line (see `json_writer_for`)."""
        assert isinstance(self.formatter, JsonFormatter)
        self._write(self.formatter.line(time.time(), logging.getLevelName(level), logger, message, extra))

    def _write(self, line: str) -> None:
        loop = _running_loop()
        if loop is None:
            self._waiting.append(line)
            self.flush()
            return
        if not self._waiting:
            loop.call_soon(self.flush)
        self._waiting.append(line)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # a Handler's lock exists once it is made
            if self._waiting:
                lines, self._waiting = self._waiting, []
                self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()


def json_writer_for(logger: logging.Logger, level: int) -> LineWriter | None:
    """The LineWriter that alone would write `logger`'s records at `level` as JSON lines,
    as `configure_logging` leaves logging; None when anything else would see them (a
    handler or filter added since, a test's capture), so that they take logging's way."""
    if logger.handlers or logger.filters or not logger.propagate or not logger.isEnabledFor(level):
        return None
    parent = logger.parent
    while parent is not None and parent is not logging.root:
        if parent.handlers or parent.filters or not parent.propagate:
            return None
        parent = parent.parent
    handlers = logging.root.handlers
    if len(handlers) != 1 or logging.root.filters:
        return None
    handler = handlers[0]
    if type(handler) is not LineWriter or handler.filters or not isinstance(handler.formatter, JsonFormatter):
        return None
    return handler if level >= handler.level else None


def _running_loop() -> AbstractEventLoop | None:
    """The event loop running in this thread, if any. Without asyncio imported there is
    none: a process without an event loop (the ledger writer) need not import it."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    handler = LineWriter(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Neither format shows the thread or the process: a record need not look them up.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


def describe_exit(exit_code: int | None) -> str:
    """How a child process ended, for a log line: `exit code 1`, `killed by SIGKILL`."""
    if exit_code is None or exit_code >= 0:
        return f"exit code {exit_code}"
    try:
        return f"killed by {signal.Signals(-exit_code).name}"
    except ValueError:
        return f"killed by signal {-exit_code}"
