"""What the app holds while it serves, typed: set up by the lifespan at start-up, read
by the endpoints, the admin API and the console through `app_state(request)`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

if TYPE_CHECKING:  # only types: the console and the admin API import this module
    from ..ledger import DisabledLedger, Ledger
    from ..reload.reloader import Reloader
    from ..serving.background import Background
    from ..serving.files import FileStore
    from ..serving.gateway import Gateway
    from ..state import StoreHealth
    from ..telemetry.metrics import Metrics
    from .console.sessions import SessionStore


# Under this name the lifespan also hands the app's Metrics to uvicorn, for its connections.
LIFESPAN_METRICS = "tollgate_metrics"


@dataclass(eq=False, slots=True)
class AppState:
    gateway: Gateway  # the current one: a reload swaps it; each request keeps the one it arrived on
    ledger: Ledger | DisabledLedger
    files: FileStore | None  # where generated images are kept (`files:`), if anywhere
    console_sessions: SessionStore
    metrics: Metrics  # this app's series, on its own registry
    background: Background  # work after an answer, which shutdown waits for
    reloader: Reloader | None  # None: the app was not started from a config file
    state_health: StoreHealth | None  # watches a shared state store, where there is one
    draining: bool = False  # shutting down: /readyz says so


def app_state(connection: HTTPConnection) -> AppState:
    return connection.app.state.tollgate


def app_state_or_none(connection: HTTPConnection) -> AppState | None:
    """None until the lifespan has set the app up."""
    return getattr(connection.app.state, "tollgate", None)
