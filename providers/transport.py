"""How a provider's requests fail: what the HTTP client (providers/http1.py) or the
caller's deadline raised, as Tollgate's upstream errors.

The client itself was measured three ways on this project's 2-core machine
(bench/README.md): a bare relay with httpx's own pool served ~1,000 req/s at chat
c=64, one with aiohttp's ~4,000; inside Tollgate, aiohttp's `ClientSession` still cost
~94 µs of CPU per request, as much as the server stack, hence a client of our own
on httptools, which uvicorn already brings.
"""

from __future__ import annotations

import asyncio

from .errors import UpstreamConnectError, UpstreamFailure, UpstreamTimeout


def upstream_failure(exc: Exception, provider: str, timeout_s: float, *, streaming: bool) -> UpstreamFailure | None:
    """The upstream error for what the client (or the caller's deadline) raised; None
    for anything else, which is not the upstream's doing."""
    kind = type(exc).__name__
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        if streaming:
            return UpstreamTimeout(f"provider '{provider}' sent nothing for {timeout_s:g}s mid-stream")
        return UpstreamTimeout(f"provider '{provider}' did not answer within {timeout_s:g}s")
    if isinstance(exc, OSError):  # refused, reset, closed early, TLS, DNS, an answer that is not HTTP
        if streaming:
            return UpstreamConnectError(f"provider '{provider}' broke off the stream ({kind})")
        return UpstreamConnectError(f"provider '{provider}' could not be reached or dropped the connection ({kind})")
    return None
