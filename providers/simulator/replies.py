"""What the simulator sends back, and how it puts it on the wire (plain ASGI).

Plain ASGI messages rather than a framework response class, because two faults
need control a framework hides: ending a connection mid-body, and declaring a
Content-Length that is never delivered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from starlette.types import Receive, Send

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


@dataclass(slots=True)
class Delivery:
    """How much of a stream went out before it ended or its client left: what a test
    reads to see that an upstream stopped generating once the proxy hung up."""

    events: int  # the frames the stream had to send
    sent: int = 0
    client_closed_at: float | None = None  # unix seconds the disconnect was seen, if it was

    def as_dict(self) -> dict[str, Any]:
        return {"events": self.events, "sent": self.sent, "client_closed_at": self.client_closed_at}


async def transmit(send: Send, reply: Reply, headers: Headers, receive: Receive | None = None) -> Delivery | None:
    """Send `reply` with the per-request `headers` (request id, upstream name).

    Returning without finishing the body makes uvicorn close the connection,
    which is how the cut faults reach the client as an incomplete message.
    A stream whose `receive` is given stops at the first pause after its client
    hangs up, as a real upstream stops generating; it says how far it got.
    """
    if isinstance(reply, NoReply):
        return None
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
        return None
    stream_headers = [(b"content-type", EVENT_STREAM), (b"cache-control", b"no-cache"), *headers]
    await send({"type": "http.response.start", "status": reply.status, "headers": stream_headers})
    delivery = Delivery(len(reply.frames))
    # Only a paced stream can notice a hang-up between frames; an unpaced one is sent at once.
    gone = asyncio.ensure_future(_hang_up(receive)) if receive is not None and reply.interval else None
    try:
        for index, frame in enumerate(reply.frames):
            if index and reply.interval:
                if gone is None:
                    await asyncio.sleep(reply.interval)
                elif (await asyncio.wait({gone}, timeout=reply.interval))[0]:
                    delivery.client_closed_at = gone.result()
                    return delivery
            await send({"type": "http.response.body", "body": frame, "more_body": True})
            delivery.sent += 1
    finally:
        if gone is not None:
            gone.cancel()
    if not reply.cut:
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    return delivery


async def disconnected(receive: Receive) -> None:
    """Returns once the client has hung up (the request body is already read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _hang_up(receive: Receive) -> float:
    await disconnected(receive)
    return time.time()
