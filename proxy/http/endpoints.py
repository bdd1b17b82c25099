"""The HTTP endpoints: OpenAI's API under /v1, and the operational ones."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from providers.types import Call, Surface

from ..config import Route as RouteSettings
from ..errors import UnknownRoute
from ..serving.answers import Estimated, Streamed
from ..serving.gateway import Gateway
from ..serving.serve import Asked, Serving, serve
from ..serving.stored_responses import StoredAsked, reach_stored_response
from .app_state import app_state, app_state_or_none
from .intake import estimate_only, purpose, read_body, read_call
from .relay import RelayResponse

log = logging.getLogger("tollgate")


async def proxy_request(request: Request, surface: Surface) -> Response:
    """Read the request, have it served, render the answer."""
    # The gateway this request arrived on (PinGateway): a reload mid-request does not change its config.
    gateway: Gateway = request.state.gateway
    request_id: str = request.state.request_id  # given to every request by RequestIds
    app = app_state(request)

    def read() -> Awaitable[Call]:
        return read_call(request, surface, request_id, max_body_bytes=gateway.max_body_bytes)

    asked = Asked(
        surface,
        request_id,
        request.headers.get("authorization"),
        read,
        estimate_only=estimate_only(request),
        purpose=purpose(request),
    )
    answer = await serve(asked, Serving(gateway, app.ledger, app.background, app.files, app.metrics))
    if isinstance(answer, Estimated):
        return JSONResponse(answer.document, headers=answer.headers)
    reply = answer.reply
    if isinstance(answer, Streamed):
        return RelayResponse(
            answer.relay, status_code=reply.status, headers=answer.headers, media_type=reply.content_type
        )
    background = BackgroundTask(answer.after) if answer.after is not None else None
    return Response(
        bytes(reply.body),
        status_code=reply.status,
        headers=answer.headers,
        media_type=reply.content_type,
        background=background,
    )


def _surface_endpoint(surface: Surface):
    async def endpoint(request: Request) -> Response:
        return await proxy_request(request, surface)

    endpoint.__name__ = surface.name.lower()
    return endpoint


def _stored_response_endpoint(action: str | None):
    """GET/DELETE /v1/responses/{id}, …/input_items, …/cancel: at the provider that made it."""

    async def endpoint(request: Request) -> Response:
        gateway: Gateway = request.state.gateway
        asked = StoredAsked(
            request_id=request.state.request_id,
            method="GET" if request.method == "HEAD" else request.method,  # Starlette serves HEAD where GET
            response_id=request.path_params["response_id"],
            action=action,
            query=request.url.query,
            stream=request.query_params.get("stream", "").lower() == "true",
            authorization=request.headers.get("authorization"),
            read_body=lambda: read_body(request, gateway.max_body_bytes),
        )
        answer = await reach_stored_response(asked, gateway, app_state(request).metrics)
        reply = answer.reply
        return Response(
            bytes(reply.body), status_code=reply.status, headers=answer.headers, media_type=reply.content_type
        )

    endpoint.__name__ = f"stored_response_{action or 'itself'}"
    return endpoint


async def list_models(request: Request) -> Response:
    gateway: Gateway = request.state.gateway
    principal = gateway.keys.authenticate(request.headers.get("authorization"))
    data = [_model_object(name, route) for name, route in gateway.config.routes.items() if principal.may_use(name)]
    return JSONResponse({"object": "list", "data": data})


async def retrieve_model(request: Request) -> Response:
    """`models.retrieve`: one route this key may use, as OpenAI's model object."""
    gateway: Gateway = request.state.gateway
    principal = gateway.keys.authenticate(request.headers.get("authorization"))
    name: str = request.path_params["model"]
    route = gateway.config.routes.get(name)
    if route is None or not principal.may_use(name):
        shown = name if len(name) <= 64 else name[:61] + "..."
        raise UnknownRoute(
            f"The model '{shown}' does not exist or you do not have access to it. "
            "GET /v1/models lists the models this key may use.",
            param="model",
        )
    return JSONResponse(_model_object(name, route))


def _model_object(name: str, route: RouteSettings) -> dict[str, object]:
    return {"id": name, "object": "model", "created": 0, "owned_by": route.owner or "tollgate"}


async def prometheus_metrics(request: Request) -> Response:
    gateway: Gateway = request.state.gateway
    if not gateway.config.server.metrics:
        raise UnknownRoute("Metrics are off on this proxy (server.metrics: false).", code="metrics_disabled")
    # With several workers, reading every worker's files is disk I/O: off the event loop.
    body = await asyncio.to_thread(app_state(request).metrics.exposition)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state = app_state_or_none(request)
    if state is None or state.draining:
        return JSONResponse({"status": "not ready"}, status_code=503)
    gateway = state.gateway
    if not state.ledger.writer_running:  # rows wait in the journal until it is back
        return JSONResponse({"status": "not ready", "reason": "the ledger writer is restarting"}, status_code=503)
    health = state.state_health
    if health is not None and not health.reachable:
        problem = (
            "the state store (state.url), which budgets and rate limits need, is unreachable: "
            "requests that need it are refused with 503 state_unavailable until it is back"
        )
        document = {"status": "not ready", "reason": "state_unavailable", "message": problem}
        return JSONResponse(document | {"config_version": gateway.version}, status_code=503)
    return JSONResponse({"status": "ready", "config_version": gateway.version})


routes = [
    *(Route(f"/v1/{surface.path}", _surface_endpoint(surface), methods=["POST"]) for surface in Surface),
    Route("/v1/responses/{response_id}", _stored_response_endpoint(None), methods=["GET", "DELETE"]),
    Route("/v1/responses/{response_id}/input_items", _stored_response_endpoint("input_items"), methods=["GET"]),
    Route("/v1/responses/{response_id}/cancel", _stored_response_endpoint("cancel"), methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", retrieve_model, methods=["GET"]),
    Route("/metrics", prometheus_metrics, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
