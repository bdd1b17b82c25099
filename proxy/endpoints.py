"""The HTTP endpoints: OpenAI's API under /v1, and the operational ones."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from policies.base import Preflight
from providers.errors import InternalError, ProxyError, UnknownRoute
from providers.types import Call, Surface

from . import metrics
from .auth import Principal
from .dispatch import Exchange, RouteExhausted, dispatch
from .files import FileStore, makes_files
from .gateway import Gateway
from .ids import new_request_id
from .intake import estimate_only, purpose, read_call, with_stream_usage
from .pricing import TargetEstimate
from .pricing.document import estimate_document
from .recording import Recording
from .routing import RoutePlan
from .streaming import StreamOutcome, is_usage_only_chunk, relay_stream

log = logging.getLogger("tollgate")


async def proxy_request(request: Request, surface: Surface) -> Response:
    # The gateway this request arrived on (PinGateway): a reload mid-request does not change its config.
    gateway: Gateway = request.state.gateway
    request.state.request_id = request_id = new_request_id()
    recording = Recording(request.app.state.ledger, gateway, request_id, surface)
    try:
        principal = gateway.keys.authenticate(request.headers.get("authorization"))
        recording.identify(principal)
        call = await read_call(request, surface, request_id, max_body_bytes=gateway.max_body_bytes)
        plan = gateway.router.plan(call.model, timeout_s=call.timeout_s)
        request.state.route = recording.row.route = plan.route
        principal.check_route(plan.route)
        if estimate_only(request):
            return JSONResponse(estimate_document(call, plan, gateway.pricer), headers={"x-request-id": request_id})
        call, hide_usage = with_stream_usage(call)
        first = plan.targets[0]
        estimate = gateway.pricer.estimate(call, plan.route, first.provider, first.model)
        recording.routed(call, plan, estimate, purpose=purpose(request))
        settles = await gateway.policies.admit(_preflight(gateway, call, plan, principal, estimate))
        recording.planned(settles, request.app.state.background.spawn)
        exchange = await dispatch(call, plan, gateway.providers)
    except RouteExhausted as exhausted:
        recording.failed(exhausted, exhausted.attempts)
        raise
    except ProxyError as error:
        recording.failed(error)
        raise
    except Exception as exc:
        log.exception("unexpected error", extra={"request_id": request_id})
        error = InternalError(
            f"Tollgate failed while handling this request (request id {request_id}). "
            "It has been logged; retry, and report the request id if it persists."
        )
        recording.failed(error)
        raise error from exc

    reply = exchange.reply
    headers = _tollgate_headers(gateway, exchange, request_id, plan.route)
    if reply.stream is not None:
        table = recording.estimate_at(exchange.target.provider, exchange.target.model).priced
        headers |= _price_headers(table.table, table.source)
        headers |= {"cache-control": "no-cache", "x-accel-buffering": "no"}
        files: FileStore | None = request.app.state.files

        def ended(outcome: StreamOutcome) -> None:
            recording.streamed(exchange, outcome)
            if files is not None and makes_files(surface):
                request.app.state.background.spawn(_keep_files(files, recording, surface, outcome.usage_events))

        relay = relay_stream(
            reply, surface, exchange.target.provider, hide=is_usage_only_chunk if hide_usage else None, on_end=ended
        )
        return StreamingResponse(relay, status_code=reply.status, headers=headers, media_type=reply.content_type)
    recording.answered(exchange)
    headers |= _price_headers(recording.row.price_table, recording.row.price_source)
    if (cost := recording.cost_usd) is not None:
        headers["x-tollgate-cost-usd"] = format(cost, "f")
    files = request.app.state.files
    background = None
    if files is not None and reply.ok and makes_files(surface):
        background = BackgroundTask(_keep_files, files, recording, surface, [reply.body])
    return Response(
        reply.body, status_code=reply.status, headers=headers, media_type=reply.content_type, background=background
    )


def _preflight(
    gateway: Gateway, call: Call, plan: RoutePlan, principal: Principal, estimate: TargetEstimate
) -> Preflight:
    return Preflight(
        call=call,
        route=plan.route,
        upstream_model=plan.targets[0].model,
        caller=principal.caller,
        estimate_usd=estimate.with_retries_usd(plan.tries_per_target - 1),
        max_request_usd=gateway.config.routes[plan.route].max_request_usd,
    )


async def _keep_files(files: FileStore, recording: Recording, surface: Surface, payloads: list[bytes]) -> None:
    urls = await asyncio.to_thread(files.store, recording.row.request_id, surface, payloads)
    if urls:
        recording.files_stored(urls)


def _price_headers(table: str | None, source: str | None) -> dict[str, str]:
    return {"x-tollgate-price-table": table, "x-tollgate-price-source": source} if table and source else {}


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
    gateway: Gateway = request.state.gateway
    principal = gateway.keys.authenticate(request.headers.get("authorization"))
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": route.owner or "tollgate"}
        for name, route in gateway.config.routes.items()
        if principal.routes is None or name in principal.routes
    ]
    return JSONResponse({"object": "list", "data": data})


async def prometheus_metrics(request: Request) -> Response:
    gateway: Gateway = request.state.gateway
    if not gateway.config.server.metrics:
        raise UnknownRoute("Metrics are off on this proxy (server.metrics: false).", code="metrics_disabled")
    body = await asyncio.to_thread(metrics.exposition)  # several workers: reading their files is disk I/O
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state = request.app.state
    gateway: Gateway | None = getattr(state, "gateway", None)
    if gateway is None or getattr(state, "draining", False):
        return JSONResponse({"status": "not ready"}, status_code=503)
    if not state.ledger.writer_running:  # rows wait in the journal until it is back
        return JSONResponse({"status": "not ready", "reason": "the ledger writer is restarting"}, status_code=503)
    return JSONResponse({"status": "ready", "config_version": gateway.version})


routes = [
    *(Route(f"/v1/{surface.path}", _surface_endpoint(surface), methods=["POST"]) for surface in Surface),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/metrics", prometheus_metrics, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
