"""The upstream's HTTP/1.1 client: keep-alive connections to one origin, each request
written in one piece (with the loop turn's others), each answer parsed by httptools
(llhttp, the parser uvicorn reads Tollgate's own clients with).

Why not aiohttp's `ClientSession`, which the providers used before: at chat c=64 it
spent ~94 µs of CPU per request in Tollgate (bench/README.md), as much as the rest of
the server stack, most of it building and checking a request that is the same every
time: the same origin, the same few headers. A provider needs only this: no cookies,
redirects, proxies or content negotiation (an answer compressed anyway is decoded).
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Iterable
from functools import cache
from urllib.parse import urlsplit

import httptools

from .turn_writes import this_turn

_PAUSE_AT = 1024 * 1024  # a stream's unread bytes at which reading from the socket pauses
_SMALL_BODY = 64 * 1024  # written with its head in one piece; a larger body is written after it


class UpstreamDisconnected(ConnectionError):
    """The upstream closed the connection before its answer was whole."""


class MalformedAnswer(ConnectionError):
    """What the upstream sent is not an HTTP/1.1 answer."""


@cache
def verified_tls() -> ssl.SSLContext:
    """The one TLS context of the process: the system's CAs, hostnames checked. Made on a
    thread at the first https connection (loading the CAs takes tens of milliseconds)."""
    return ssl.create_default_context()


async def _tls_context() -> ssl.SSLContext:
    if verified_tls.cache_info().currsize:
        return verified_tls()
    return await asyncio.to_thread(verified_tls)


class Connection(asyncio.Protocol):
    """One connection and the answer arriving on it. Requests take turns: the pool
    lends it to one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._error: Exception | None = None
        self._paused = False
        self._start_answer()

    def _start_answer(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._head_done = False
        self._complete = False
        self._keep_alive = False
        self._until_close = False  # the body has no length: it ends when the connection does
        self._streaming = False  # read as it arrives, so a slow reader holds the socket back

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(MalformedAnswer(f"the upstream's answer is not HTTP/1.1 ({exc})"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._head_done and self._until_close and not self._complete:
            self._complete = True  # the end of a body without a length
            self._wake()
        else:
            self._fail(UpstreamDisconnected("the upstream closed the connection before its answer was whole"))

    def pause_writing(self) -> None:  # the request is in memory already: the transport buffers it
        pass

    def resume_writing(self) -> None:
        pass

    # --- httptools' callbacks -------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        if self.status < 200:  # an interim answer (103 Early Hints): the real one follows
            return
        self._head_done = True
        self._until_close = (
            "content-length" not in self.headers
            and "chunked" not in self.headers.get("transfer-encoding", "")
            and self.status not in (204, 304)
        )
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._streaming and self._buffered > _PAUSE_AT and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.status < 200:
            self._start_answer()
            return
        self._complete = True
        self._keep_alive = self._parser.should_keep_alive()
        self._wake()

    # --- the request's side ---------------------------------------------------------------

    def send(self, head: bytes, body: bytes | None) -> None:
        """Write a request: a small one at the end of the loop's turn, with the turn's
        others (turn_writes.py); a large body at once, after its head, uncopied."""
        assert self.transport is not None
        if body and len(body) > _SMALL_BODY:
            self.transport.write(head)
            self.transport.write(body)
        else:
            this_turn(self.loop).write(self.transport, head + body if body else head)

    async def read_head(self) -> None:
        """Until the status and headers are in (`status`, `headers`)."""
        while not self._head_done:
            await self._next()

    async def read_body(self) -> list[bytes]:
        """The rest of the body, as the chunks it arrived in."""
        while not self._complete:
            await self._next()
        return self._decoded(self._take())

    async def iter_body(self, read_timeout_s: float) -> AsyncIterator[bytes]:
        """The body as it arrives, each wait for more at most `read_timeout_s`."""
        decoder = _decoder(self.headers.get("content-encoding"))
        self._streaming = True
        while True:
            if self._chunks:
                chunks = self._take()
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                yield _decompressed(decoder, data) if decoder else data
            elif self._complete:
                if decoder is not None and (rest := _decompressed(decoder, b"", end=True)):
                    yield rest
                return
            else:
                async with asyncio.timeout(read_timeout_s):
                    await self._next()

    @property
    def reusable(self) -> bool:
        """The answer was read to its end and both sides keep the connection open."""
        return (
            self._complete
            and self._keep_alive
            and not self.closed
            and not self._chunks
            # An upstream may answer (413, say) before the request's body is all written.
            and self.transport is not None
            and not self.transport.get_write_buffer_size()
        )

    def reset(self) -> None:
        self._start_answer()
        self._error = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _take(self) -> list[bytes]:
        chunks, self._chunks, self._buffered = self._chunks, [], 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunks

    def _decoded(self, chunks: list[bytes]) -> list[bytes]:
        decoder = _decoder(self.headers.get("content-encoding"))
        if decoder is None:
            return chunks
        return [_decompressed(decoder, b"".join(chunks), end=True)]

    async def _next(self) -> None:
        """Wait for the parser's next step; raise what broke the connection."""
        if self._error is not None:
            raise self._error
        self._waiter = self.loop.create_future()
        try:
            await self._waiter  # the caller looks again: a failure raises at its next call
        finally:
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        if not self._complete and self._error is None:
            self._error = error
        self._wake()


def _decoder(encoding: str | None):
    """For a body the upstream compressed without being asked (we ask for identity)."""
    if encoding is None or encoding == "identity":
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # either header, detected
    raise MalformedAnswer(f"the upstream compressed its answer with {encoding!r}, which Tollgate does not decode")


def _decompressed(decoder, data: bytes, *, end: bool = False) -> bytes:
    try:
        return decoder.decompress(data) + (decoder.flush() if end else b"")
    except zlib.error as exc:
        raise MalformedAnswer(f"the upstream's compressed answer does not decompress ({exc})") from None


class Pool:
    """Keep-alive connections to one origin (`base_url`'s scheme, host and port), at most
    `max_connections` at once; a request past that waits for one to come back. An idle
    connection is closed after `keepalive_s`, or when the upstream closes it."""

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int = 100,
        keepalive_s: float = 60.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"an upstream URL is http:// or https:// with a host, not {base_url!r}")
        self.https = parts.scheme == "https"
        self._tls = tls  # the process's verified context unless given one (tests trust their own CA)
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        name = f"[{self.host}]" if ":" in self.host else self.host
        self.authority = name if parts.port is None else f"{name}:{parts.port}"
        self.path = parts.path.rstrip("/")  # what every request's path starts with
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._idle: deque[Connection] = deque()
        self._open = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self.closed = False  # aclose'd: its provider has left the config

    def head(self, method: str, target: str, headers: Iterable[tuple[str, str]], length: int) -> bytes:
        """A request's head: `target` is the path below the base URL's, with its query."""
        lines = [f"{method} {self.path}{target} HTTP/1.1", f"host: {self.authority}"]
        lines.extend(f"{name}: {value}" for name, value in headers)
        if length or method in ("POST", "PUT", "PATCH"):
            lines.append(f"content-length: {length}")
        if not all(map(str.isprintable, lines)):
            raise ValueError("a request line or header holds a control character; it would split the request")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def acquire(self) -> Connection:
        """A connection that is idle, or a new one; the caller must `release` it."""
        loop = asyncio.get_running_loop()
        while True:
            if self.closed:
                raise UpstreamDisconnected("the provider was removed from the config while this request waited")
            while self._idle:
                connection = self._idle.pop()  # the most recently used: the least likely to be closed
                if connection.closed or connection.loop is not loop or self._expired(connection):
                    self.discard(connection)
                    continue
                return connection
            if self._open < self._max_connections:
                return await self._connect(loop)
            turn = loop.create_future()
            self._waiting.append(turn)
            try:
                await turn
            except BaseException:
                if turn in self._waiting:
                    self._waiting.remove(turn)
                elif not turn.cancelled():
                    self._next_turn()  # given a turn it will not take: the next waiter's
                raise

    def release(self, connection: Connection) -> None:
        """Back to the pool if its answer was read to the end, else closed."""
        if connection.reusable and not self.closed:
            connection.reset()
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
            self._next_turn()
        else:
            self.discard(connection)

    def discard(self, connection: Connection) -> None:
        """Closes a lent connection: what it carried cannot be finished or trusted."""
        connection.close()
        self._open -= 1
        self._next_turn()

    def _next_turn(self) -> None:
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return

    def _expired(self, connection: Connection) -> bool:
        return time.monotonic() - connection.idle_since > self._keepalive_s

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> Connection:
        self._open += 1
        try:
            tls = (self._tls or await _tls_context()) if self.https else None
            _, connection = await loop.create_connection(
                lambda: Connection(loop), self.host, self.port, ssl=tls, server_hostname=self.host if tls else None
            )
        except BaseException:
            self._open -= 1
            self._next_turn()
            raise
        return connection

    async def aclose(self) -> None:
        """Closes the idle connections now, and each lent one when it comes back."""
        self.closed = True
        while self._idle:
            self.discard(self._idle.pop())
        for turn in self._waiting:
            if not turn.done():
                turn.set_result(None)
