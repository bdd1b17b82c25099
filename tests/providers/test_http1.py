"""The upstream's HTTP/1.1 client (providers/http1.py) against a real server that answers
with bytes each test scripts: keep-alive reuse, every way a body ends, interim and
compressed answers, broken ones, the pool's limit, TLS."""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import subprocess
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from providers.http1 import MalformedAnswer, Pool, UpstreamDisconnected

# What the server answers to the n-th request on a connection: the bytes, and whether it
# closes the connection after them.
Script = Callable[[bytes], tuple[bytes, bool]]


def answer(body: bytes = b'{"ok":true}', *, status: str = "200 OK", headers: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\ncontent-length: {len(body)}\r\n{headers}\r\n".encode() + body


@dataclass
class Upstream:
    script: Script
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    heads: list[bytes] = field(default_factory=list)
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.lower().split(b"\r\n")
                length = next((int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length")), 0)
                body = await reader.readexactly(length)
                self.heads.append(head)
                reply, close = self.script(body)
                if asyncio.iscoroutine(reply):
                    reply = await reply
                writer.write(reply)
                await writer.drain()
                if close:
                    return
        finally:
            self.open_now -= 1
            writer.close()


@pytest.fixture
async def upstream():
    made: list[asyncio.Server] = []

    async def start(script: Script, *, tls: ssl.SSLContext | None = None) -> Upstream:
        server_side = Upstream(script)
        server = await asyncio.start_server(server_side.handle, "127.0.0.1", 0, ssl=tls)
        made.append(server)
        port = server.sockets[0].getsockname()[1]
        server_side.url = f"{'https' if tls else 'http'}://{'localhost' if tls else '127.0.0.1'}:{port}/base/v1"
        return server_side

    yield start
    for server in made:
        server.close()


async def fetch(pool: Pool, body: bytes = b"{}", target: str = "/chat/completions") -> tuple[int, bytes]:
    connection = await pool.acquire()
    try:
        connection.send(pool.head("POST", target, [("content-type", "application/json")], len(body)), body)
        await connection.read_head()
        data = b"".join(await connection.read_body())
    except BaseException:
        pool.discard(connection)
        raise
    status = connection.status
    pool.release(connection)
    return status, data


async def test_a_connection_is_kept_for_the_next_request_and_the_head_is_as_written(upstream):
    server = await upstream(lambda body: (answer(body), False))
    pool = Pool(server.url)
    assert await fetch(pool, b'{"n":1}') == (200, b'{"n":1}')
    assert await fetch(pool, b'{"n":2}') == (200, b'{"n":2}')
    assert server.connections == 1
    head = server.heads[0].decode()
    port = server.url.split(":")[2].split("/")[0]
    assert head.startswith("POST /base/v1/chat/completions HTTP/1.1\r\n")
    assert f"\r\nhost: 127.0.0.1:{port}\r\n" in head and "\r\ncontent-length: 7\r\n" in head
    await pool.aclose()


async def test_a_chunked_body_is_undone_and_comes_in_pieces(upstream):
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    server = await upstream(lambda body: (chunked, False))
    pool = Pool(server.url)
    assert await fetch(pool) == (200, b"hello world")
    assert await fetch(pool) == (200, b"hello world")
    assert server.connections == 1  # a chunked answer ends the message, not the connection
    await pool.aclose()


async def test_a_body_without_a_length_ends_with_the_connection_which_is_not_kept(upstream):
    server = await upstream(lambda body: (b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 100_000, True))
    pool = Pool(server.url)
    assert await fetch(pool) == (200, b"x" * 100_000)
    assert await fetch(pool) == (200, b"x" * 100_000)
    assert server.connections == 2
    await pool.aclose()


async def test_an_answer_that_says_close_is_not_kept(upstream):
    server = await upstream(lambda body: (answer(headers="connection: close\r\n"), True))
    pool = Pool(server.url)
    await fetch(pool)
    await fetch(pool)
    assert server.connections == 2
    await pool.aclose()


async def test_an_idle_connection_the_upstream_closed_is_replaced(upstream):
    server = await upstream(lambda body: (answer(), False))
    pool = Pool(server.url)
    connection = await pool.acquire()
    pool.release(connection)  # nothing read: not reusable, closed
    await fetch(pool)
    kept = pool._idle[0]
    kept.transport.abort()  # as if the upstream's keep-alive ran out
    await asyncio.sleep(0.05)
    assert kept.closed
    assert await fetch(pool) == (200, b'{"ok":true}')
    await pool.aclose()


async def test_an_answer_cut_mid_body_fails_as_a_disconnect(upstream):
    server = await upstream(lambda body: (b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"half', True))
    pool = Pool(server.url)
    with pytest.raises(UpstreamDisconnected):
        await fetch(pool)
    assert pool._open == 0  # the broken connection is not counted any more
    await pool.aclose()


async def test_bytes_that_are_not_http_fail_as_malformed(upstream):
    server = await upstream(lambda body: (b"SMTP ready\r\n\r\n", False))
    pool = Pool(server.url)
    with pytest.raises(MalformedAnswer):
        await fetch(pool)
    assert isinstance(MalformedAnswer("x"), OSError)  # what the providers map to a connect error
    await pool.aclose()


async def test_an_interim_answer_is_skipped_for_the_real_one(upstream):
    early = b"HTTP/1.1 103 Early Hints\r\nlink: </a>; rel=preload\r\n\r\n"
    server = await upstream(lambda body: (early + answer(b'{"real":1}', status="201 Created"), False))
    pool = Pool(server.url)
    assert await fetch(pool) == (201, b'{"real":1}')
    await pool.aclose()


async def test_a_gzipped_answer_is_decoded_whole_and_streamed(upstream):
    payload = b'{"text":"' + b"na" * 5000 + b'"}'
    server = await upstream(lambda body: (answer(gzip.compress(payload), headers="content-encoding: gzip\r\n"), False))
    pool = Pool(server.url)
    assert await fetch(pool) == (200, payload)
    connection = await pool.acquire()
    connection.send(pool.head("POST", "/x", [], 0), b"")
    await connection.read_head()
    assert b"".join([chunk async for chunk in connection.iter_body(5)]) == payload
    pool.release(connection)
    assert server.connections == 1
    await pool.aclose()


async def test_a_stream_arrives_as_sent_and_its_connection_is_kept(upstream):
    async def events(body: bytes) -> bytes:
        return (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            + b"".join(f"{len(line):x}\r\n".encode() + line + b"\r\n" for line in (b"data: 1\n\n", b"data: 2\n\n"))
            + b"0\r\n\r\n"
        )

    server = await upstream(lambda body: (events(body), False))
    pool = Pool(server.url)
    for _ in range(2):
        connection = await pool.acquire()
        connection.send(pool.head("POST", "/x", [], 0), b"")
        await connection.read_head()
        assert b"".join([chunk async for chunk in connection.iter_body(5)]) == b"data: 1\n\ndata: 2\n\n"
        pool.release(connection)
    assert server.connections == 1
    await pool.aclose()


async def test_a_stream_that_goes_quiet_times_out(upstream):
    async def stalls(body: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n"

    server = await upstream(lambda body: (stalls(body), False))
    pool = Pool(server.url)
    connection = await pool.acquire()
    connection.send(pool.head("POST", "/x", [], 0), b"")
    await connection.read_head()
    seen = []
    with pytest.raises(TimeoutError):
        async for chunk in connection.iter_body(0.2):
            seen.append(chunk)
    assert seen == [b"data: 1\n\n"]
    pool.discard(connection)
    await pool.aclose()


async def test_the_pool_never_opens_more_than_its_limit_and_a_cancelled_wait_loses_no_turn(upstream):
    async def slow(body: bytes) -> bytes:
        await asyncio.sleep(0.05)
        return answer(body)

    server = await upstream(lambda body: (slow(body), False))
    pool = Pool(server.url, max_connections=2)
    results = await asyncio.gather(*(fetch(pool, b'{"i":%d}' % i) for i in range(8)))
    assert [data for _, data in results] == [b'{"i":%d}' % i for i in range(8)]
    assert server.most_open == 2 and server.connections == 2

    one = Pool(server.url, max_connections=1)
    first = asyncio.create_task(fetch(one))
    waiting = asyncio.create_task(fetch(one))
    await asyncio.sleep(0.01)
    waiting.cancel()  # gives up its place in the queue
    assert (await first)[0] == 200
    assert (await asyncio.wait_for(fetch(one), 2))[0] == 200
    await pool.aclose()
    await one.aclose()


async def test_a_header_or_target_that_would_split_the_request_is_refused():
    pool = Pool("http://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match="control character"):
        pool.head("POST", "/x", [("x-team", "a\r\nhost: evil")], 0)
    with pytest.raises(ValueError, match="control character"):
        pool.head("GET", "/responses/r HTTP/1.1\r\nx: y", [], 0)


def test_only_http_and_https_upstreams_are_taken():
    with pytest.raises(ValueError, match="http:// or https://"):
        Pool("ftp://example.com/v1")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


async def test_https_checks_the_certificate_and_talks_through_tls(upstream, certificate):
    key, cert = certificate
    serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    serving.load_cert_chain(cert, key)
    server = await upstream(lambda body: (answer(body), False), tls=serving)

    stranger = Pool(server.url)  # the system's CAs do not know this certificate
    with pytest.raises(ssl.SSLCertVerificationError):
        await fetch(stranger)
    await stranger.aclose()

    trusting = ssl.create_default_context(cafile=str(cert))
    pool = Pool(server.url, tls=trusting)
    assert await fetch(pool, b'{"tls":1}') == (200, b'{"tls":1}')
    assert await fetch(pool, b'{"tls":2}') == (200, b'{"tls":2}')
    assert server.connections == 1
    await pool.aclose()


async def test_a_large_answer_is_read_whole_and_a_large_stream_holds_the_socket_back(upstream):
    big = b"b" * (3 * 1024 * 1024)
    server = await upstream(lambda body: (answer(big), False))
    pool = Pool(server.url)
    assert await fetch(pool) == (200, big)  # read whole: never paused past the stream's mark

    connection = await pool.acquire()
    connection.send(pool.head("POST", "/x", [], 0), b"")
    await connection.read_head()
    chunks = connection.iter_body(5)
    received = [await anext(chunks)]
    await asyncio.sleep(0.2)  # a slow reader: more than the mark arrives meanwhile, then reading stops
    assert not connection.transport.is_reading()
    received += [chunk async for chunk in chunks]
    assert b"".join(received) == big
    pool.release(connection)
    assert server.connections == 1
    await pool.aclose()


async def test_a_compressed_answer_that_does_not_decompress_is_malformed(upstream):
    server = await upstream(
        lambda body: (answer(b"\x1f\x8b not gzip at all", headers="content-encoding: gzip\r\n"), False)
    )
    pool = Pool(server.url)
    with pytest.raises(MalformedAnswer, match="does not decompress"):
        await fetch(pool)
    await pool.aclose()


async def test_an_answer_that_comes_before_the_request_is_written_does_not_keep_the_connection(upstream):
    async def refuses_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer(b'{"error":"too large"}', status="413 Payload Too Large"))
        await writer.drain()
        await asyncio.sleep(0.5)  # reads nothing more: the rest of the body stays with the client
        writer.close()

    server = await asyncio.start_server(refuses_at_once, "127.0.0.1", 0)
    pool = Pool(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1")
    connection = await pool.acquire()
    body = b"x" * (32 * 1024 * 1024)
    connection.send(pool.head("POST", "/images/edits", [], len(body)), body)
    await connection.read_head()
    await connection.read_body()
    assert connection.status == 413 and not connection.reusable
    pool.release(connection)
    assert pool._idle == deque() and pool._open == 0
    server.close()
    await pool.aclose()


async def test_a_small_request_is_written_at_the_end_of_the_turn_and_a_large_one_at_once():
    """Small requests go together at the end of the loop's turn (providers/turn_writes.py);
    a large body is not held back."""
    listener = socket.create_server(("127.0.0.1", 0))
    pool = Pool(f"http://127.0.0.1:{listener.getsockname()[1]}/v1")
    connection = await pool.acquire()
    upstream_side, _ = listener.accept()
    upstream_side.setblocking(False)

    def received() -> bytes:
        try:
            return upstream_side.recv(1 << 20)
        except BlockingIOError:
            return b""

    connection.send(pool.head("POST", "/chat/completions", [], 2), b"{}")
    assert received() == b""  # held until the turn ends
    await asyncio.sleep(0)
    assert received().endswith(b"\r\n\r\n{}")

    large = b"x" * (128 * 1024)
    connection.send(pool.head("POST", "/images/edits", [], len(large)), large)
    assert received().startswith(b"POST /v1/images/edits HTTP/1.1\r\n")  # before the turn ends
    pool.discard(connection)
    upstream_side.close()
    listener.close()
    await pool.aclose()
