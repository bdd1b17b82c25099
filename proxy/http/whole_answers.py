"""A whole answer written to the client in one piece: its head and its first body
chunk in a single write, where uvicorn writes each on its own; an answer in one
body message, with the loop turn's others (providers/turn_writes.py).

uvicorn writes an answer's head when `http.response.start` is sent and each body chunk
when it follows: for an answer already whole in memory, two syscalls, two TCP
segments and two wake-ups of the client where one would do. The direct way's answers
(`_send_whole` in direct.py) say their length in the start message (`LENGTH`); for
those this cycle checks the headers as uvicorn does (all names with one search, all
values with another), keeps the head, and sends it with the first body chunk. Every
other message takes uvicorn's way unchanged, as does any answer whose headers it
would refuse or that name `connection` or `transfer-encoding`.

At chat c=64 (bench/quick.py, one run): 366 -> 341 µs of CPU per answer, +11 % req/s,
for 2 % more instructions (the kernel's side, which callgrind does not count, is what
shrinks).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE, STATUS_LINE, RequestResponseCycle

from providers.turn_writes import release_held, this_turn

LENGTH = "tollgate.content_length"  # in an http.response.start message: the body's length, in bytes
_JOINED_UP_TO = 64 * 1024  # a first chunk beyond this is written after the head, not copied into it


class ClientTransport:
    """A client connection's transport, given to uvicorn's protocol in its place: closing
    it first writes the answer the loop's turn may still hold for it. uvicorn closes a
    connection in many places (a malformed request after a good one, a timeout, a
    shutdown), any of which may come between an answer held and the turn's end."""

    __slots__ = ("_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop

    def close(self) -> None:
        if not self._transport.is_closing():
            release_held(self._loop, self)
        self._transport.close()

    # What uvicorn calls per request, passed on without __getattr__'s detour.

    def write(self, data: bytes) -> None:
        self._transport.write(data)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class WholeAnswerCycle(RequestResponseCycle):
    """uvicorn's request-response cycle, with whole answers' heads sent with their body."""

    _head: bytes | None = None

    async def send(self, message: Any) -> None:
        if message["type"] == "http.response.start" and LENGTH in message and self._takes(message):
            return
        head = self._head
        if head is not None and message["type"] == "http.response.body":
            self._head = None
            body = message.get("body", b"")
            if len(body) > _JOINED_UP_TO:
                self.transport.write(head)
            elif self._whole(message, body):
                if self.flow.write_paused and not self.disconnected:
                    await self.flow.drain()  # as uvicorn: a client that reads nothing is not written more
                if not self.disconnected:
                    self._complete(head + body)
                return
            else:
                self.expected_content_length += len(head)
                message = {**message, "body": head + body}
        await super().send(message)

    def _whole(self, message: Any, body: bytes) -> bool:
        """The answer's one and only body message, on a connection that stays open."""
        return not message.get("more_body", False) and len(body) == self.expected_content_length and self.keep_alive

    def _complete(self, answer: bytes) -> None:
        """What uvicorn does with a last body message, the write held to the end of the
        turn (providers/turn_writes.py): the connection stays open, its next answer comes
        in a later turn, and whatever closes it first writes this (`ClientTransport`)."""
        this_turn(asyncio.get_running_loop()).write(self.transport, answer)
        self.expected_content_length = 0
        self.response_complete = True
        self.message_event.set()
        self.on_response()

    def _takes(self, message: Any) -> bool:
        """Keep the head of a whole answer; False (nothing done) where uvicorn's way must run."""
        if self.response_started or self.disconnected or self.access_log or self.scope["method"] == "HEAD":
            return False
        headers = [*self.default_headers, *message.get("headers", ())]
        names = b"".join([name for name, _ in headers])
        if HEADER_RE.search(names) or HEADER_VALUE_RE.search(b"".join([value for _, value in headers])):
            return False  # uvicorn's way says which one is wrong
        if b"connection" in names or b"transfer-encoding" in names:
            return False  # headers that change how the connection goes on: uvicorn's to read
        self.response_started = True
        self.waiting_for_100_continue = False
        self.chunked_encoding = False
        self.expected_content_length = message[LENGTH]
        content = [STATUS_LINE[message["status"]]]
        for name, value in headers:
            content += (name, b": ", value, b"\r\n")
        if not self.keep_alive:
            content.append(b"connection: close\r\n")
        content.append(b"\r\n")
        self._head = b"".join(content)
        return True
