"""An ASGI app imported at its first request. The admin API and the console are not
what a proxy starts up to serve: their modules (the ledger queries, reports, the
console's pages) took ~10 ms of a start-up's imports, which their first request pays
instead (tests/runtime/test_start_up_imports.py keeps them out of start-up)."""

from __future__ import annotations

import importlib

from starlette.types import ASGIApp, Receive, Scope, Send


class DeferredApp:
    def __init__(self, module: str, attribute: str) -> None:
        self._module = module
        self._attribute = attribute
        self._app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            self._app = getattr(importlib.import_module(self._module), self._attribute)
        await self._app(scope, receive, send)
