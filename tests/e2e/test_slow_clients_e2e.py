"""Slow and excess clients, on raw sockets: a connection that does not send its whole
header block (`server.client_header_timeout_s`) or body (`client_body_timeout_s`)
in time gets a 408 and is closed; one beyond `server.max_connections` gets a 503."""

from __future__ import annotations

import json
import socket
import time

import httpx

from .configs import ConfigFile, routed
from .harness import Proxy, eventually, ledger_rows

TIMEOUT_S = 1.0
CLOSED_WITHIN_S = TIMEOUT_S + 3  # a loaded machine


def limited(simulator_url: str, **server: object) -> ConfigFile:
    return routed(simulator_url).with_server(**server)


def connect(proxy: Proxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=10)


def until_closed(connection: socket.socket, timeout_s: float) -> bytes:
    """Everything the proxy sends until it closes the connection (socket.timeout if it does not)."""
    connection.settimeout(timeout_s)
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    connection.close()
    return received


def error_of(response: bytes) -> tuple[int, dict]:
    head, body = response.split(b"\r\n\r\n", 1)
    return int(head.split()[1]), json.loads(body)["error"]


def trickle(connections: list[socket.socket], for_s: float) -> None:
    """A byte on each connection every 0.1 s: slow, never silent (stopped before the timeout,
    so that no byte reaches a closed connection and resets it before its 408 is read)."""
    until = time.monotonic() + for_s
    while time.monotonic() < until:
        for connection in connections:
            connection.sendall(b"x")
        time.sleep(0.1)


def test_connections_that_send_their_headers_slowly_get_a_408_and_are_closed(simulator, start_proxy):
    proxy = start_proxy(limited(simulator.url, client_header_timeout_s=TIMEOUT_S))
    slow = [connect(proxy) for _ in range(40)]
    silent = connect(proxy)
    opened = time.monotonic()
    for connection in slow:
        connection.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: tollgate\r\nContent-Type: appl")
    trickle(slow, TIMEOUT_S * 0.7)

    for connection in [*slow, silent]:
        status, error = error_of(until_closed(connection, CLOSED_WITHIN_S))
        assert status == 408 and error["code"] == "request_timeout" and error["type"] == "invalid_request_error"
        assert "server.client_header_timeout_s" in error["message"]
    assert TIMEOUT_S * 0.9 < time.monotonic() - opened < CLOSED_WITHIN_S
    assert httpx.get(f"{proxy.url}/readyz").status_code == 200  # others are served as before


def test_a_body_sent_slowly_gets_a_408_the_connection_closes_and_the_ledger_has_its_row(simulator, start_proxy):
    proxy = start_proxy(limited(simulator.url, client_body_timeout_s=TIMEOUT_S))
    body = b'{"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": "a slow body"}]}'
    connection = connect(proxy)
    connection.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: tollgate\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:20]
    )
    sent = time.monotonic()
    trickle([connection], TIMEOUT_S * 0.7)

    status, error = error_of(until_closed(connection, CLOSED_WITHIN_S))
    assert status == 408 and error["code"] == "request_timeout"
    assert "server.client_body_timeout_s" in error["message"]
    assert TIMEOUT_S * 0.9 < time.monotonic() - sent < CLOSED_WITHIN_S
    assert eventually(lambda: ledger_rows(proxy, "http_status = 408 AND error_type = 'request_timeout'") == 1)
    assert "Traceback" not in proxy.log() and "unexpected error" not in proxy.log()


def test_a_connection_beyond_max_connections_gets_a_503(simulator, start_proxy):
    proxy = start_proxy(limited(simulator.url, max_connections=3))
    held = [connect(proxy) for _ in range(3)]
    for connection in held:  # served, and kept open (keep-alive)
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: tollgate\r\n\r\n")
        assert connection.recv(65536).startswith(b"HTTP/1.1 200")

    refused = httpx.get(f"{proxy.url}/v1/models")
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    error = refused.json()["error"]
    assert error["code"] == "too_many_connections" and "server.max_connections" in error["message"]

    held.pop().close()
    assert eventually(lambda: httpx.get(f"{proxy.url}/v1/models").status_code == 200, timeout_s=5)
    for connection in held:
        connection.close()
