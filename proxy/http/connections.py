"""Client connections: uvicorn's httptools protocol with the limits a server facing
slow or too many clients needs.

- `server.client_header_timeout_s`: a connection whose request headers have not
  all arrived in that time (from the connection's start, or from the first byte of
  a later request on it) gets a 408 and is closed.
- `server.client_body_timeout_s`: likewise for the body, from the end of the
  headers; 408 where no answer has started yet, else the connection is only closed.
- `server.max_connections`: a connection beyond it (in this process) is answered
  503 and closed.

The cost to a request is one timer per connection, armed only while part of a
request is still to come: a request that arrives in one read, the usual case,
arms and cancels at most the timer its connection started with.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from ..telemetry.metrics import Metrics
from .app_state import LIFESPAN_METRICS
from .whole_answers import ClientTransport, WholeAnswerCycle

Awaiting = Literal["headers", "body"]


@dataclass(frozen=True, slots=True)
class ClientLimits:
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int | None


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """Made by uvicorn per connection, through a partial that gives it `limits`."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ClientLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self._awaiting: Awaiting | None = "headers"  # the part of a request still to come
        self._timed: Awaiting | None = None  # the part the timer runs for
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(ClientTransport(transport, self.loop))  # type: ignore[arg-type]
        limit = self.limits.max_connections
        if limit is not None and len(self.connections) > limit:
            self.app = over_capacity(limit)  # read when its request's headers are complete
            self._count_closed("max_connections")
        self._time_what_is_missing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._awaiting = None
        self._time_what_is_missing()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._time_what_is_missing()

    # httptools' callbacks, during data_received: they only note where the request is.

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting = "headers"

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._awaiting = "body"
        if type(self.cycle) is RequestResponseCycle:
            self.cycle.__class__ = WholeAnswerCycle  # made just now, its task not yet started

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting = None

    def _time_what_is_missing(self) -> None:
        if self._awaiting == self._timed:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timed = self._awaiting
        if self._awaiting == "headers":
            self._timer = self.loop.call_later(self.limits.header_timeout_s, self._headers_late)
        elif self._awaiting == "body":
            self._timer = self.loop.call_later(self.limits.body_timeout_s, self._body_late)

    def _headers_late(self) -> None:
        self._timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            # A request pipelined behind one still being answered: its time starts after that answer.
            self._timer = self.loop.call_later(self.limits.header_timeout_s, self._headers_late)
            return
        self._count_closed("header_timeout")
        seconds = self.limits.header_timeout_s
        self._close(f"The request's headers did not all arrive within {seconds:g} s (server.client_header_timeout_s)")

    def _body_late(self) -> None:
        self._timer = None
        self._count_closed("body_timeout")
        cycle = self.cycle
        answering = cycle.response_started
        cycle.disconnected = True  # the app reads a disconnect, and what it sends goes nowhere
        cycle.message_event.set()
        if answering:  # too late for a status: the answer has begun
            self.transport.close()
            return
        seconds = self.limits.body_timeout_s
        self._close(f"The request body did not all arrive within {seconds:g} s (server.client_body_timeout_s)")

    def _count_closed(self, reason: str) -> None:
        # The app's metrics, which its lifespan hands to uvicorn's state of the app.
        metrics: Metrics | None = self.app_state.get(LIFESPAN_METRICS)
        if metrics is not None:
            metrics.connections_closed.labels(reason).inc()

    def _close(self, why: str) -> None:
        if not self.transport.is_closing():
            self.transport.write(_request_timeout(f"{why}; the connection is closed. Send the whole request promptly."))
            self.transport.close()


def over_capacity(limit: int) -> Any:
    """The ASGI app a connection beyond `server.max_connections` is served by."""
    message = (
        f"Tollgate is serving as many connections as it allows ({limit}, server.max_connections); "
        "retry in a moment, or reuse a connection you already have."
    )
    body = _error(message, "server_error", "too_many_connections")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", b"1"),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def _error(message: str, error_type: str, code: str) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": error_type, "param": None, "code": code}})


def _request_timeout(message: str) -> bytes:
    """A whole 408 response, written straight to the connection: no request reached the app."""
    body = _error(message, "invalid_request_error", "request_timeout")
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body
