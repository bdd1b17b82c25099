"""What the simulator sends back, and how it puts it on the wire (plain ASGI).

Plain ASGI messages rather than a framework response class, because two faults
need control a framework hides: ending a connection mid-body, and declaring a
Content-Length that is never delivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from starlette.types import Send

from .billing import Generation

Headers = list[tuple[bytes, bytes]]

JSON: Final = b"application/json"
EVENT_STREAM: Final = b"text/event-stream; charset=utf-8"


@dataclass(frozen=True, slots=True)
class BodyReply:
    """A complete body. `declared_length` beyond `len(body)` makes the server
    hang up mid-body (the non-streamed `cut_stream` fault)."""

    status: int
    body: bytes
    content_type: bytes = JSON
    headers: Headers = field(default_factory=list)
    declared_length: int | None = None
    generation: Generation | None = None  # what the answer bills, if anything


@dataclass(frozen=True, slots=True)
class StreamReply:
    """Server-sent events, one ASGI message per frame. `cut` ends the connection
    after the last frame without closing the chunked body."""

    frames: Sequence[bytes]
    interval: float = 0.0
    cut: bool = False
    status: int = 200
    generation: Generation | None = None


@dataclass(frozen=True, slots=True)
class NoReply:
    """The client left while the simulator was waiting; nothing to send."""

    status: int = 499


Reply = BodyReply | StreamReply | NoReply


async def transmit(send: Send, reply: Reply, headers: Headers) -> None:
    """Send `reply` with the per-request `headers` (request id, upstream name).

    Returning without finishing the body makes uvicorn close the connection,
    which is how the cut faults reach the client as an incomplete message.
    """
    if isinstance(reply, NoReply):
        return
    if isinstance(reply, BodyReply):
        length = reply.declared_length if reply.declared_length is not None else len(reply.body)
        start_headers = [
            (b"content-type", reply.content_type),
            (b"content-length", str(length).encode()),
            *headers,
            *reply.headers,
        ]
        await send({"type": "http.response.start", "status": reply.status, "headers": start_headers})
        complete = length == len(reply.body)
        await send({"type": "http.response.body", "body": reply.body, "more_body": not complete})
        return
    stream_headers = [(b"content-type", EVENT_STREAM), (b"cache-control", b"no-cache"), *headers]
    await send({"type": "http.response.start", "status": reply.status, "headers": stream_headers})
    for index, frame in enumerate(reply.frames):
        if index and reply.interval:
            await asyncio.sleep(reply.interval)
        await send({"type": "http.response.body", "body": frame, "more_body": True})
    if not reply.cut:
        await send({"type": "http.response.body", "body": b"", "more_body": False})
