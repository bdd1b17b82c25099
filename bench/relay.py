"""The bare Python relay: what a proxy in Python costs before it does any work of its
own. Tollgate's server stack (uvicorn with httptools and uvloop) and its upstream pool
(one aiohttp session, the same limits), a raw ASGI app: the method, path, headers and
body go to the upstream, and its answer streams back as it arrives.

    .venv/bin/python bench/relay.py --upstream http://127.0.0.1:8080 --port 8000
"""

from __future__ import annotations

import argparse

import aiohttp
import uvicorn

# Per connection, not per message: each side of the relay has its own. aiohttp sets
# Host and Content-Length for the request; it has already undone the upstream's chunking.
_REQUEST_DROPS = frozenset({b"host", b"connection", b"keep-alive", b"content-length", b"transfer-encoding"})
_RESPONSE_DROPS = frozenset({b"connection", b"keep-alive", b"transfer-encoding"})


class Relay:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/").encode()
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        url = self.upstream + scope["raw_path"] + (b"?" + scope["query_string"] if scope["query_string"] else b"")
        headers = [(k.decode(), v.decode("latin-1")) for k, v in scope["headers"] if k not in _REQUEST_DROPS]
        body = b"".join(chunks)
        async with self.session.request(
            scope["method"], url.decode(), headers=headers, data=body, allow_redirects=False, auto_decompress=False
        ) as answer:
            kept = [(k, v) for k, v in answer.raw_headers if k.lower() not in _RESPONSE_DROPS]
            await send({"type": "http.response.start", "status": answer.status, "headers": kept})
            async for chunk in answer.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def lifespan(self, receive, send) -> None:
        await receive()  # lifespan.startup: the session belongs to the running loop
        # Tollgate's pool settings (providers/transport.py): 100 connections, 60 s keep-alive.
        connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=60)
        self.session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await self.session.close()
        await send({"type": "lifespan.shutdown.complete"})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", required=True, help="the upstream's base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        Relay(args.upstream),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        server_header=False,  # as Tollgate: the same bytes on the wire
        log_level="warning",
    )
