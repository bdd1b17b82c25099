"""LoopbackServer: an app on a free loopback port in its own thread, started only
once its lifespan ran, and a clear error when it cannot start."""

from __future__ import annotations

from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from proxy.serving.loopback import LoopbackServer


def _server(app: Starlette) -> LoopbackServer:
    return LoopbackServer(
        lambda host, port: uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="on"), name="test-app"
    )


def test_it_serves_on_a_free_port_until_stopped():
    server = _server(Starlette(routes=[Route("/", lambda request: PlainTextResponse("here"))]))
    url = server.start()
    assert url.startswith("http://127.0.0.1:") and httpx.get(url).text == "here"
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)


def test_an_app_that_fails_to_start_is_an_error_not_a_hang():
    @asynccontextmanager
    async def lifespan(app):
        raise RuntimeError("ledger unavailable")
        yield

    with pytest.raises(RuntimeError, match="test-app did not start"):
        _server(Starlette(lifespan=lifespan)).start()
