"""The simulator in-process: its ASGI app, and a client that reaches it through httpx's
ASGI transport with credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from providers.simulator import create_app
from providers.simulator.app import Simulator

from .helpers import AUTH


@pytest.fixture
def app() -> Simulator:
    return create_app()


@pytest.fixture
async def client(app: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim", headers=AUTH) as http:
        yield http
