"""A whole answer leaves in one write: its head with its first body chunk, where
uvicorn alone writes each on its own (whole_answers.py). Served by uvicorn with the
proxy's own protocol, as `tollgate serve` does; each connection's writes are
recorded on their way to the socket."""

from __future__ import annotations

import asyncio
import functools
import socket
from collections.abc import Iterator

import httpx
import orjson
import uvicorn

from proxy.http.connections import ClientLimits, LimitedHttpToolsProtocol
from proxy.http.whole_answers import LENGTH
from proxy.serving.loopback import LoopbackServer

from .one_route import COMPLETION, answering_app

WRITES: list[bytes] = []  # every write to a client connection, in order


class RecordedTransport:
    def __init__(self, transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        WRITES.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


class RecordingProtocol(LimitedHttpToolsProtocol):
    def connection_made(self, transport) -> None:  # type: ignore[override]
        PROTOCOLS.append(self)
        super().connection_made(RecordedTransport(transport))


PROTOCOLS: list[RecordingProtocol] = []  # every client connection's, in order


def serving(app) -> Iterator[str]:
    protocol = functools.partial(RecordingProtocol, limits=ClientLimits(30.0, 30.0, None))
    server = LoopbackServer(
        lambda host, port: uvicorn.Config(
            app, host=host, port=port, http=protocol, interface="asgi3", access_log=False, log_config=None
        ),
        name="proxy",
    )
    WRITES.clear()
    PROTOCOLS.clear()
    try:
        yield server.start()
    finally:
        server.stop()


def test_a_proxied_answer_is_one_write_and_the_connection_carries_the_next(tmp_path):
    for url in serving(answering_app(tmp_path)):
        with httpx.Client(base_url=url) as client:  # one connection, kept alive
            chat = {"model": "gpt-5.4-mini", "messages": []}
            answers = [client.post("/v1/chat/completions", json=chat) for _ in "ab"]
    for answer in answers:
        assert answer.status_code == 200 and answer.json() == COMPLETION
        assert answer.headers["x-tollgate-route"] == "gpt-5.4-mini" and answer.headers["x-tollgate-cost-usd"]
    answered = [write for write in WRITES if write.startswith(b"HTTP/1.1 200 OK\r\n")]
    assert len(answered) == 2  # each answer's head ...
    assert all(write.endswith(orjson.dumps(COMPLETION)) for write in answered)  # ... with its body
    head = answered[0].split(b"\r\n\r\n")[0]
    assert b"\r\ncontent-length: " in head and b"\r\ndate: " in head  # uvicorn's own headers are kept


async def _whole(scope, receive, send, *, headers: list, body: bytes) -> None:
    await receive()
    start = {"type": "http.response.start", "status": 200, "headers": headers, LENGTH: len(body)}
    await send(start)
    await send({"type": "http.response.body", "body": body})


def _length(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-length", str(len(body)).encode())]


def test_a_large_body_follows_its_head_uncopied_and_http_1_0_closes():
    body = b"x" * (256 * 1024)
    headers = [*_length(body), (b"content-type", b"application/octet-stream")]
    app = functools.partial(_whole, headers=headers, body=body)
    for url in serving(app):
        received = _exchange(url, b"GET / HTTP/1.0\r\n\r\n")  # HTTP/1.0: closed after the answer
    head, sent = received.split(b"\r\n\r\n", 1)
    assert sent == body and b"\r\nconnection: close" in head
    assert WRITES[0].startswith(b"HTTP/1.1 200 OK\r\n") and WRITES[0].endswith(b"\r\n\r\n")  # the head alone
    assert b"".join(WRITES[1:]) == body


async def _counting_writes(scope, receive, send, *, counts: list[int]) -> None:
    """A whole answer; how many writes were made when its send returned, and after the turn."""
    body = b'{"ok":true}'
    await _whole(scope, receive, send, headers=[*_length(body), (b"content-type", b"application/json")], body=body)
    counts.append(len(WRITES))
    await asyncio.sleep(0)
    counts.append(len(WRITES))


def test_an_answer_leaves_at_the_end_of_the_turn_unless_its_connection_closes_after_it():
    """Held with the turn's other writes (providers/turn_writes.py) on a connection that
    stays open; written at once where the connection closes after it, or it would be lost."""
    counts: list[int] = []
    for url in serving(functools.partial(_counting_writes, counts=counts)):
        kept = _exchange(url, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", until=b'{"ok":true}')
        closed = _exchange(url, b"GET / HTTP/1.0\r\n\r\n")
    assert kept.endswith(b'\r\n\r\n{"ok":true}') and closed.endswith(b'\r\n\r\n{"ok":true}')
    assert b"\r\nconnection: close" in closed
    assert counts == [0, 1, 2, 2]  # kept open: held past the send; closing: written in it


async def _answering_then_shut_down(scope, receive, send) -> None:
    body = b'{"ok":true}'
    await _whole(scope, receive, send, headers=_length(body), body=body)  # held to the end of the turn
    for protocol in PROTOCOLS:
        protocol.shutdown()  # what uvicorn does to each connection at SIGTERM, here before the turn ends


def test_an_answer_still_held_when_its_connection_closes_is_written_first():
    """Whatever closes a client connection (a shutdown, a malformed request after a good
    one, a timeout) may come between an answer held and the end of the turn."""
    for url in serving(_answering_then_shut_down):
        received = _exchange(url, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")  # to the connection's end
    assert received.startswith(b"HTTP/1.1 200 OK\r\n") and received.endswith(b'\r\n\r\n{"ok":true}')


async def _naming_its_path(scope, receive, send) -> None:
    body = scope["path"].encode()
    await _whole(scope, receive, send, headers=_length(body), body=body)


def test_pipelined_requests_are_answered_whole_and_in_order():
    """Answers held to the end of the turn keep their order on a connection: the next
    request's cycle starts in a later turn."""
    for url in serving(_naming_its_path):
        asked = b"".join(b"GET /%d HTTP/1.1\r\nhost: x\r\n\r\n" % n for n in range(3))
        received = _exchange(url, asked + b"GET /3 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    bodies = [answer.rsplit(b"\r\n\r\n", 1)[-1] for answer in received.split(b"HTTP/1.1 200 OK\r\n")[1:]]
    assert bodies == [b"/0", b"/1", b"/2", b"/3"]


def test_a_header_uvicorn_would_refuse_is_refused_as_uvicorn_does():
    """uvicorn refuses a header value with a control character once the answer has
    begun: the connection closes without a byte of it."""
    app = functools.partial(_whole, headers=[(b"x-bad", b"a\x01b"), (b"content-length", b"2")], body=b"{}")
    for url in serving(app):
        assert _exchange(url, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n") == b""
    assert WRITES == []


def _exchange(url: str, request: bytes, *, until: bytes | None = None) -> bytes:
    """What the server sends back to `request`, to the connection's end (or to `until`)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
            if until is not None and received.endswith(until):
                break
    return received
