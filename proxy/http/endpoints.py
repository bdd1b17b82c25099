"""The HTTP endpoints: OpenAI's API under /v1, and the operational ones."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from policies.base import Preflight
from providers.errors import InternalError, ProxyError, UnknownRoute
from providers.types import Call, Surface

from ..config import Route as RouteSettings
from ..pricing import TargetEstimate
from ..serving.auth import Principal
from ..serving.conversation_routing import bind_answer, bind_as_it_passes, binding_of, makes_conversations, plan_request
from ..serving.dispatch import Attempt, RouteExhausted, dispatch
from ..serving.estimate_document import estimate_document
from ..serving.files import FileStore, makes_files
from ..serving.gateway import Gateway
from ..serving.recording import Recording
from ..serving.routing import RoutePlan
from ..serving.stored_responses import reach_stored_response
from ..serving.streaming import RelayResponse, StreamOutcome, is_usage_only_chunk, relay_stream
from ..state import StoreHealth
from ..telemetry import metrics
from .intake import estimate_only, purpose, read_call, with_stream_usage

log = logging.getLogger("tollgate")


async def proxy_request(request: Request, surface: Surface) -> Response:
    # The gateway this request arrived on (PinGateway): a reload mid-request does not change its config.
    gateway: Gateway = request.state.gateway
    request_id: str = request.state.request_id  # given to every request by RequestIds
    recording = Recording(request.app.state.ledger, gateway, request_id, surface)
    try:
        principal = gateway.keys.authenticate(request.headers.get("authorization"))
        recording.identify(principal)
        call = await read_call(request, surface, request_id, max_body_bytes=gateway.max_body_bytes)
        plan = await plan_request(call, gateway, principal.owner)
        recording.row.route = plan.route
        principal.check_route(plan.route)
        if estimate_only(request):
            headers = answer_headers(gateway, request_id, plan.route, attempts=())
            return JSONResponse(estimate_document(call, plan, gateway.pricer), headers=headers)
        call, hide_usage = with_stream_usage(call)
        first = plan.targets[0]
        estimate = gateway.pricer.estimate(call, plan.route, first.provider, first.model)
        recording.routed(call, plan, estimate, purpose=purpose(request))
        settles = await gateway.policies.admit(_preflight(gateway, call, plan, principal, estimate))
        recording.planned(settles, request.app.state.background.spawn)
        exchange = await dispatch(call, plan, gateway.providers)
    except RouteExhausted as exhausted:
        recording.failed(exhausted, exhausted.attempts)
        exhausted.headers |= answer_headers(gateway, request_id, recording.row.route, exhausted.attempts)
        raise
    except ProxyError as error:
        recording.failed(error)
        error.headers |= answer_headers(gateway, request_id, recording.row.route, attempts=())
        raise
    except Exception as exc:
        log.exception("unexpected error", extra={"request_id": request_id})
        error = InternalError(
            f"Tollgate failed while handling this request (request id {request_id}). "
            "It has been logged; retry, and report the request id if it persists.",
            headers=answer_headers(gateway, request_id, recording.row.route, attempts=()),
        )
        recording.failed(error)
        raise error from exc

    reply = exchange.reply
    headers = answer_headers(gateway, request_id, plan.route, exchange.attempts, exchange.reply.request_id)
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
            reply,
            surface,
            exchange.target.provider,
            images=call.image.n if call.image is not None else 1,
            hide=is_usage_only_chunk if hide_usage else None,
            on_end=ended,
        )
        if makes_conversations(call):
            binding = binding_of(exchange, plan, principal.owner)
            relay = bind_as_it_passes(relay, gateway.conversations, binding, request_id)
        return RelayResponse(relay, status_code=reply.status, headers=headers, media_type=reply.content_type)
    recording.answered(exchange)
    if reply.ok and makes_conversations(call):
        await bind_answer(gateway.conversations, reply.body, binding_of(exchange, plan, principal.owner), request_id)
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
        longest_s=plan.longest_s,
    )


async def _keep_files(files: FileStore, recording: Recording, surface: Surface, payloads: list[bytes]) -> None:
    urls = await asyncio.to_thread(files.store, recording.row.request_id, surface, payloads)
    if urls:
        recording.files_stored(urls)


def _price_headers(table: str | None, source: str | None) -> dict[str, str]:
    return {"x-tollgate-price-table": table, "x-tollgate-price-source": source} if table and source else {}


def answer_headers(
    gateway: Gateway,
    request_id: str,
    route: str | None,
    attempts: Sequence[Attempt],
    upstream_request_id: str | None = None,
) -> dict[str, str]:
    """What every answer to a proxied request says of its way, failures included: the
    route where one was found, the provider tried last and who it bills, how many tries."""
    headers = {"x-request-id": request_id, "x-tollgate-attempts": str(len(attempts))}
    if route:
        headers["x-tollgate-route"] = route
    if attempts:
        provider = attempts[-1].provider
        headers["x-tollgate-provider"] = provider
        headers["x-tollgate-billing-owner"] = gateway.billing_owner(provider)
    if upstream_request_id:
        headers["x-tollgate-upstream-request-id"] = upstream_request_id
    return headers


def _surface_endpoint(surface: Surface):
    async def endpoint(request: Request) -> Response:
        return await proxy_request(request, surface)

    endpoint.__name__ = surface.name.lower()
    return endpoint


def _stored_response_endpoint(action: str | None):
    """GET/DELETE /v1/responses/{id}, …/input_items, …/cancel: at the provider that made it."""

    async def endpoint(request: Request) -> Response:
        gateway: Gateway = request.state.gateway
        request_id: str = request.state.request_id
        try:
            exchange = await reach_stored_response(request, gateway, request_id, action)
        except ProxyError as error:
            attempts = error.attempts if isinstance(error, RouteExhausted) else ()
            error.headers |= answer_headers(gateway, request_id, getattr(request.state, "route", None), attempts)
            raise
        reply = exchange.reply
        headers = answer_headers(gateway, request_id, request.state.route, exchange.attempts, reply.request_id)
        return Response(reply.body, status_code=reply.status, headers=headers, media_type=reply.content_type)

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
    health: StoreHealth | None = getattr(state, "state_health", None)
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
