"""httpx's client API over aiohttp's connection pool.

Measured on this project's 2-core machine (bench/README.md): a bare relay made
with httpx's own pool (httpcore) served ~1,000 req/s at concurrency 64; the same
relay over aiohttp's pool, still through `httpx.AsyncClient`, ~4,000. Providers
keep speaking httpx; only the transport underneath changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import httpx


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One keep-alive pool (an aiohttp session) per provider, made on first use
    because aiohttp sessions belong to the running event loop."""

    def __init__(self, *, max_connections: int = 100, keepalive_s: float = 60.0) -> None:
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None

    def _pool(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=self._keepalive_s)
            # The proxy sets its own headers; aiohttp must not add a user agent of its own.
            self._session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        try:
            content: bytes | None = request.content or None
        except httpx.RequestNotRead:  # a streamed request body
            content = request.stream  # type: ignore[assignment]
        try:
            response = await self._pool().request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=content,
                allow_redirects=False,
                auto_decompress=False,  # httpx decodes, as it would with its own transport
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=timeout.get("connect"), sock_read=timeout.get("read")
                ),
            )
        except Exception as exc:
            raise _as_httpx_error(exc, request, connecting=True) from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_ResponseStream(response, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            # iter_any hands over what arrived, as it arrives: SSE events are not held back.
            async for chunk in self._response.content.iter_any():
                yield chunk
        except Exception as exc:
            raise _as_httpx_error(exc, self._request, connecting=False) from exc

    async def aclose(self) -> None:
        # A body not read to the end closes its connection rather than returning it to the pool.
        self._response.release()


def _as_httpx_error(exc: Exception, request: httpx.Request, *, connecting: bool) -> Exception:
    """The httpx exception that httpx's own transport would have raised."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(str(exc), request=request)
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return httpx.ReadTimeout(str(exc) or "timed out reading from upstream", request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(exc), request=request)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(f"incomplete response body: {exc}", request=request)
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        if connecting:
            return httpx.RemoteProtocolError(f"upstream closed the connection: {exc}", request=request)
        return httpx.ReadError(f"upstream closed the connection: {exc}", request=request)
    if isinstance(exc, aiohttp.ClientError):
        return httpx.TransportError(str(exc))
    return exc
