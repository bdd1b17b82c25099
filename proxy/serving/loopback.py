"""An ASGI app served on a free loopback port from its own thread and event loop:
the in-process simulator, and the proxy that `tollgate launch-check` starts when
it is given no `--url`. A slow answer there never holds up the caller's loop."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable

import uvicorn

ServerConfig = Callable[[str, int], uvicorn.Config]  # (host, port) -> the uvicorn config to serve


class LoopbackServer:
    def __init__(self, server_config: ServerConfig, *, name: str, host: str = "127.0.0.1") -> None:
        self._socket = socket.socket()
        self._socket.bind((host, 0))
        port = self._socket.getsockname()[1]
        self.url = f"http://{host}:{port}"
        self._name = name
        self._server = uvicorn.Server(server_config(host, port))
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except SystemExit:  # uvicorn's way out when the app fails to start; start() reports it
            pass
        finally:
            self._socket.close()

    def start(self) -> str:
        """Serve, and return the URL once the app has started (its lifespan ran)."""
        self._thread.start()
        while not self._server.started and self._thread.is_alive():
            threading.Event().wait(0.01)
        if not self._server.started:
            raise RuntimeError(f"{self._name} did not start; its log above says why")
        return self.url

    def stop(self, timeout_s: float = 5) -> None:
        """Stop accepting, let requests in flight finish, run the app's shutdown."""
        self._server.should_exit = True
        self._thread.join(timeout=timeout_s)
