"""The ASGI application: endpoints, the one place errors are rendered, the pin
that keeps each request on one gateway, and the lifespan that builds the gateway
at start-up, takes reloads while serving and closes it at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from providers.errors import ProxyError

from ..errors import InternalError, InvalidRequest
from ..ledger import DisabledLedger, Ledger, open_ledger
from ..reload.reloader import Reloader
from ..serving.background import Background
from ..serving.files import FileStore
from ..serving.gateway import Gateway
from ..state import StateStore, StoreHealth
from ..telemetry.metrics import Metrics, process_registry
from .app_state import LIFESPAN_METRICS, AppState
from .console.sessions import SessionStore
from .cors import Cors
from .deferred import DeferredApp
from .direct import serve_direct, takes
from .endpoints import routes
from .file_access import file_routes
from .ids import new_request_id

log = logging.getLogger("tollgate")


def create_app(
    build_gateway: Callable[[], Gateway],
    *,
    reloader: Reloader | None = None,
    state: StateStore | None = None,
    metrics: Metrics | None = None,
) -> Starlette:
    """`reloader`: where reloads come from; without one (tests) the config is fixed.
    `state`: the counters of budgets and rate limits, closed at shutdown.
    `metrics`: this app's series; without them (tests), made on a registry of the app's own."""
    metrics = metrics or Metrics(process_registry())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Metrics]]:
        gateway = build_gateway()
        ledger = open_ledger(gateway.config.ledger)
        ledger.keep_writer_running()
        held = AppState(
            gateway=gateway,
            ledger=ledger,
            files=FileStore(gateway.config.files) if gateway.config.files else None,
            console_sessions=SessionStore(gateway.config.ledger.url),  # connects when first used
            metrics=metrics,
            background=Background(),
            reloader=reloader,
            state_health=None,
        )
        app.state.tollgate = held
        await ledger.start()
        if state is not None and state.shared:
            held.state_health = StoreHealth(
                state,
                needed=lambda: held.gateway.policies.uses_state,
                report=lambda reachable: metrics.state_reachable.set(1 if reachable else 0),
            )
            await held.state_health.start()
        if isinstance(ledger, Ledger):
            gateway.budget_starts.attach(ledger)  # budgets start from the ledger's spend
        watcher = None
        if gateway.config.server.metrics:
            metrics.publish_config(gateway.version, gateway.config)
            watcher = asyncio.get_running_loop().create_task(_mirror_ledger(ledger, metrics))
        if reloader is not None:
            await reloader.start(held)
        yield {LIFESPAN_METRICS: metrics}
        if watcher is not None:
            watcher.cancel()
        # uvicorn has let the requests in flight finish; now their files, then their rows.
        held.draining = True
        await held.background.wait()
        if reloader is not None:
            await reloader.stop()
        await held.gateway.aclose()
        await held.gateway.conversations.aclose()  # shared by every gateway: closed once, here
        if held.state_health is not None:
            await held.state_health.stop()
        if state is not None:
            await state.aclose()
        if not await ledger.close():
            log.warning(
                "the ledger database did not take every row before shutdown; "
                "they stay in the journal and go in at the next start"
            )

    return TollgateApp(
        routes=[
            *routes,
            Mount("/admin", app=DeferredApp("proxy.http.admin", "admin_app")),
            *file_routes,
            Mount("/ui", app=DeferredApp("proxy.http.console.routes", "console_app")),
        ],
        lifespan=lifespan,
        middleware=[Middleware(RequestIds), Middleware(PinGateway), Middleware(Cors)],
        exception_handlers={ProxyError: render_error, HTTPException: _http_error, Exception: _unexpected_error},
    )


class TollgateApp(Starlette):
    """Starlette, with the proxied requests' own way in front of it (direct.py)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        surface = takes(scope)
        if surface is None or not await serve_direct(self, surface, scope, receive, send):
            await super().__call__(scope, receive, send)


class RequestIds:
    """Every HTTP answer carries `x-request-id`: the ledger's key for a proxied request,
    and for any other answer (a 404, /metrics, admin) an id its log lines share. The
    cost per request: an id, and one look at the headers when the answer starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        stamp = (b"x-request-id", request_id.encode())

        async def send_stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(name.lower() == b"x-request-id" for name, _ in headers):
                    message["headers"] = [*headers, stamp]
            await send(message)

        await self.app(scope, receive, send_stamped)


class PinGateway:
    """Each HTTP request runs on the gateway current when it arrived, to its last byte
    (streams included), whatever reloads happen meanwhile: endpoints read it from
    `request.state.gateway`. Counting it there lets a retired gateway know when its
    last request has ended. The cost per request: two attribute writes and a count."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        gateway: Gateway = scope["app"].state.tollgate.gateway
        scope.setdefault("state", {})["gateway"] = gateway
        gateway.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            gateway.leave()


async def _mirror_ledger(ledger: Ledger | DisabledLedger, metrics: Metrics) -> None:
    """The writer process's progress, copied into metrics once a second."""
    writer = getattr(ledger, "writer", None)
    if writer is None:
        return
    rows = failures = 0
    while True:
        metrics.ledger_pending.set(writer.pending_bytes)
        metrics.ledger_rows.inc(writer.rows_written - rows)
        metrics.ledger_failures.inc(writer.write_failures - failures)
        rows, failures = writer.rows_written, writer.write_failures
        await asyncio.sleep(1)


async def render_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProxyError)
    headers = {"x-request-id": _request_id(request), **exc.headers}
    return Response(exc.body(), status_code=exc.status, headers=headers, media_type="application/json")


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 for paths we do not serve, in OpenAI's shape."""
    assert isinstance(exc, HTTPException)
    error = InvalidRequest(
        f"{request.method} {request.url.path} is not served here. Tollgate serves OpenAI's API under /v1 "
        "(images/generations, images/edits, responses, chat/completions, embeddings, models).",
        code="unknown_url",
    )
    error.status = exc.status_code
    return await render_error(request, error)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    request_id = _request_id(request)
    log.error("unexpected error outside a request handler", exc_info=exc, extra={"request_id": request_id})
    return await render_error(request, InternalError(f"Tollgate failed (request id {request_id}); it has been logged."))


def _request_id(request: Request) -> str:
    request_id = getattr(request.state, "request_id", None)
    if request_id is None:
        request.state.request_id = request_id = new_request_id()
    return request_id
