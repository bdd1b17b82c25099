"""The connection pool a provider sends through: one aiohttp session per provider,
and the failures of its requests as Tollgate's upstream errors.

Measured on this project's 2-core machine (bench/README.md): a bare relay made with
httpx's own pool (httpcore) served ~1,000 req/s at chat c=64, one over aiohttp's pool
~4,000; httpx's client layer kept above aiohttp's pool still cost ~300 µs of CPU per
request (building the request, its headers and URL, cookies, its own log line), so
providers call aiohttp directly.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache

import aiohttp

from .errors import UpstreamConnectError, UpstreamFailure, UpstreamTimeout


class Pool:
    """One keep-alive pool (an aiohttp session) per provider, made on first use
    because aiohttp sessions belong to the running event loop."""

    def __init__(self, *, max_connections: int = 100, keepalive_s: float = 60.0) -> None:
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None
        self.closed = False  # aclose'd: its provider has left the config

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=self._keepalive_s)
            # The proxy sets its own headers; aiohttp must not add a user agent of its own.
            self._session = aiohttp.ClientSession(
                connector=connector, skip_auto_headers=("User-Agent",), cookie_jar=aiohttp.DummyCookieJar()
            )
        return self._session

    async def aclose(self) -> None:
        self.closed = True
        if self._session is not None:
            await self._session.close()


@lru_cache(maxsize=128)
def timeouts(timeout_s: float, *, streaming: bool) -> aiohttp.ClientTimeout:
    """Connecting, and each wait for a stream's next bytes, may take `timeout_s`. A whole
    answer is read within the caller's deadline of `timeout_s` for the exchange, which
    bounds every wait in it: a timer per read there would only cost (aiohttp re-arms it
    at each read from the socket, a dozen or more for a 2 MB image). One object per
    route's timeout."""
    return aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s if streaming else None)


def upstream_failure(exc: Exception, provider: str, timeout_s: float, *, streaming: bool) -> UpstreamFailure | None:
    """The upstream error for what aiohttp (or the caller's deadline) raised; None for
    anything else, which is not the upstream's doing."""
    kind = type(exc).__name__
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):  # aiohttp's connect and read timeouts too
        if streaming:
            return UpstreamTimeout(f"provider '{provider}' sent nothing for {timeout_s:g}s mid-stream")
        return UpstreamTimeout(f"provider '{provider}' did not answer within {timeout_s:g}s")
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        if streaming:
            return UpstreamConnectError(f"provider '{provider}' broke off the stream ({kind})")
        return UpstreamConnectError(f"provider '{provider}' could not be reached or dropped the connection ({kind})")
    return None
