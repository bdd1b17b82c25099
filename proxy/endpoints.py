"""The HTTP endpoints: OpenAI's API under /v1, and the operational ones."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from providers.errors import InternalError, ProxyError
from providers.types import Surface

from .dispatch import Exchange, dispatch
from .gateway import Gateway
from .ids import new_request_id
from .intake import read_call
from .streaming import relay_stream

log = logging.getLogger("tollgate")


async def proxy_request(request: Request, surface: Surface) -> Response:
    # One gateway for the whole request: a reload mid-request does not change its config.
    gateway: Gateway = request.app.state.gateway
    request.state.request_id = request_id = new_request_id()
    try:
        principal = gateway.keys.authenticate(request.headers.get("authorization"))
        call = await read_call(request, surface, request_id, max_body_bytes=gateway.max_body_bytes)
        plan = gateway.router.plan(call.model, timeout_s=call.timeout_s)
        request.state.route = plan.route
        principal.check_route(plan.route)
        exchange = await dispatch(call, plan, gateway.providers)
    except ProxyError:
        raise
    except Exception as exc:
        log.exception("unexpected error", extra={"request_id": request_id})
        raise InternalError(
            f"Tollgate failed while handling this request (request id {request_id}). "
            "It has been logged; retry, and report the request id if it persists."
        ) from exc

    reply = exchange.reply
    headers = _tollgate_headers(gateway, exchange, request_id, plan.route)
    if reply.stream is not None:
        headers |= {"cache-control": "no-cache", "x-accel-buffering": "no"}
        return StreamingResponse(
            relay_stream(reply, surface, exchange.target.provider),
            status_code=reply.status,
            headers=headers,
            media_type=reply.content_type,
        )
    return Response(reply.body, status_code=reply.status, headers=headers, media_type=reply.content_type)


def _tollgate_headers(gateway: Gateway, exchange: Exchange, request_id: str, route: str) -> dict[str, str]:
    provider = exchange.target.provider
    headers = {
        "x-request-id": request_id,
        "x-tollgate-route": route,
        "x-tollgate-provider": provider,
        "x-tollgate-billing-owner": gateway.billing_owner(provider),
        "x-tollgate-attempts": str(len(exchange.attempts)),
    }
    if upstream_id := exchange.reply.request_id:
        headers["x-tollgate-upstream-request-id"] = upstream_id
    return headers


def _surface_endpoint(surface: Surface):
    async def endpoint(request: Request) -> Response:
        return await proxy_request(request, surface)

    endpoint.__name__ = surface.name.lower()
    return endpoint


async def list_models(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    principal = gateway.keys.authenticate(request.headers.get("authorization"))
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": route.owner or "tollgate"}
        for name, route in gateway.config.routes.items()
        if principal.routes is None or name in principal.routes
    ]
    return JSONResponse({"object": "list", "data": data})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    gateway: Gateway | None = getattr(request.app.state, "gateway", None)
    if gateway is None or getattr(request.app.state, "draining", False):
        return JSONResponse({"status": "not ready"}, status_code=503)
    return JSONResponse({"status": "ready", "config_version": gateway.version})


routes = [
    *(Route(f"/v1/{surface.path}", _surface_endpoint(surface), methods=["POST"]) for surface in Surface),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
