"""Running the simulator as a real HTTP server."""

from __future__ import annotations

import logging
from typing import Any, Final

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from .app import Simulator

# uvicorn reports this when an app ends a response early. The cut faults do that
# on purpose, so it is noise here, not a bug report.
_INTENTIONAL_CUT: Final = "ASGI callable returned without completing response."


class _IgnoreIntentionalCuts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != _INTENTIONAL_CUT


def create_app() -> Simulator:
    """A fresh simulator: its own request log, fault counters and image cache."""
    return Simulator()


def server_config(
    app: Simulator, host: str, port: int, log_level: str = "info", log_config: dict[str, Any] | None = LOGGING_CONFIG
) -> uvicorn.Config:
    """uvloop + httptools, access log off: the simulator must not be a benchmark's bottleneck.
    `log_config=None` leaves logging as the embedding process set it up."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=log_level,
        log_config=log_config,
        lifespan="on",
    )


def quiet_intentional_cuts() -> None:
    logging.getLogger("uvicorn.error").addFilter(_IgnoreIntentionalCuts())


def run(host: str = "127.0.0.1", port: int = 8099, log_level: str = "info") -> None:
    """Serve a new simulator until interrupted (blocking)."""
    config = server_config(create_app(), host, port, log_level)
    server = uvicorn.Server(config)
    quiet_intentional_cuts()
    server.run()
