"""Reaching a stored Response: `GET` and `DELETE /v1/responses/{id}`, `GET
/v1/responses/{id}/input_items` and `POST /v1/responses/{id}/cancel` go to the
provider that made the response, as the conversation map says, retried there
and never elsewhere. An id the map does not know is a 404.

They move no money (the upstream bills none of them), so they get no ledger row:
rows are what spend reports, budgets and reconciliation count. They are observed
all the same: the access log and the request metrics take them from a row that is
built the way a ledger row is, and never written.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from providers.errors import FailureReason, ProxyError
from providers.types import Call, JsonBody, StoredResource, Surface

from ..errors import InvalidRequest
from ..ledger import LedgerRow, utc_now
from ..state import Binding
from ..telemetry.metrics import Metrics
from .answers import Answered, answer_headers
from .conversation_routing import ConversationCannotMove
from .dispatch import Attempt, Exchange, RouteExhausted, dispatch
from .gateway import Gateway
from .observation import log_access, record_metrics
from .routing import PlannedTarget, RoutePlan

# Where the route a response was made on is gone: its provider still keeps the response.
_TRIES_WITHOUT_ROUTE = 2
_TIMEOUT_WITHOUT_ROUTE_S = 60.0
_MAX_RETRY_WAIT_WITHOUT_ROUTE_S = 10.0

# The metrics' and access log's `surface` for each: a closed set.
SURFACES = {
    ("GET", None): "responses.retrieve",
    ("DELETE", None): "responses.delete",
    ("GET", "input_items"): "responses.input_items",
    ("POST", "cancel"): "responses.cancel",
}


class ResponseNotFound(InvalidRequest):
    status = 404
    code = "response_not_found"


@dataclass(frozen=True, slots=True)
class StoredAsked:
    """What the HTTP face read of a request for a stored response."""

    request_id: str
    method: str  # GET, DELETE or POST (HEAD is served as GET)
    response_id: str
    action: str | None  # None, "input_items" or "cancel"
    query: str  # passed on as it came
    stream: bool  # `?stream=true`, which is not relayed
    authorization: str | None
    read_body: Callable[[], Awaitable[bytes]]  # the POST's body, read within the gateway's limit


async def reach_stored_response(asked: StoredAsked, gateway: Gateway, metrics: Metrics) -> Answered:
    """The answer of the provider that keeps the response named in the path."""
    surface = SURFACES[(asked.method, asked.action)]
    request_id = asked.request_id
    row = LedgerRow(request_id=request_id, created_at=utc_now(), surface=surface, config_version=gateway.version)
    started = time.perf_counter()
    try:
        exchange = await _reach(asked, gateway, row)
    except RouteExhausted as exhausted:
        _observe(
            gateway, metrics, row, started, exhausted.status, exhausted.reason, exhausted.attempts, exhausted.waited_s
        )
        exhausted.headers |= answer_headers(gateway, request_id, row.route, exhausted.attempts)
        raise
    except ProxyError as error:
        _observe(gateway, metrics, row, started, error.status, error.reason, [], 0.0)
        error.headers |= answer_headers(gateway, request_id, row.route, ())
        raise
    reply = exchange.reply
    row.upstream_request_id = reply.request_id
    reason = None if reply.ok else FailureReason.INVALID_REQUEST  # the upstream's refusal (an unknown id) goes back
    _observe(gateway, metrics, row, started, reply.status, reason, exchange.attempts, exchange.waited_s)
    return Answered(reply, answer_headers(gateway, request_id, row.route, exchange.attempts, reply.request_id))


async def _reach(asked: StoredAsked, gateway: Gateway, row: LedgerRow) -> Exchange:
    principal = gateway.keys.authenticate(asked.authorization)
    row.key_id, row.team = principal.key_id, principal.team
    response_id, action, method = asked.response_id, asked.action, asked.method
    if action is None and method == "GET" and asked.stream:
        raise InvalidRequest(
            "Tollgate does not relay a stored response as a stream (GET /v1/responses/{id}?stream=true); "
            "retrieve it without `stream`.",
            param="stream",
        )
    binding = await gateway.conversations.find(response_id)
    if binding is None or not binding.reachable_by(principal.owner):  # another team's: not found, as upstream
        raise ResponseNotFound(
            f"Response with id '{response_id}' not found. Tollgate knows the responses made through it for "
            "state.conversation_ttl_days; one made elsewhere, or longer ago, it cannot place."
        )
    row.route = binding.route
    principal.check_route(binding.route)
    row.provider, row.upstream_model = binding.provider, binding.model
    if binding.provider not in gateway.providers:
        raise ConversationCannotMove(
            f"Response '{response_id}' lives on provider '{binding.provider}', which is no longer configured, and "
            f"a response cannot move to another provider. Ask the operator to configure '{binding.provider}' "
            "again to reach it.",
            headers={"x-tollgate-provider": binding.provider},
        )
    row.billing_owner = gateway.billing_owner(binding.provider)
    row.simulated = binding.provider in gateway.simulated
    path = f"responses/{quote(response_id, safe='')}" + (f"/{action}" if action else "")
    body = await asked.read_body() if method == "POST" else b""
    call = Call(
        request_id=row.request_id,
        surface=Surface.RESPONSES,
        model=binding.route,
        stream=False,
        body=JsonBody(body, {}),
        resource=StoredResource(method, path, asked.query),
    )
    return await dispatch(call, _plan(gateway, binding, response_id), gateway.providers)


def _plan(gateway: Gateway, binding: Binding, response_id: str) -> RoutePlan:
    """The provider that keeps the response, alone, on its route's tries and timeout."""
    route = gateway.config.routes.get(binding.route)
    return RoutePlan(
        route=binding.route,
        targets=(PlannedTarget(binding.provider, binding.model, fallback=False),),
        tries_per_target=(1 + route.retries) if route else _TRIES_WITHOUT_ROUTE,
        timeout_s=route.timeout_s if route else _TIMEOUT_WITHOUT_ROUTE_S,
        max_retry_wait_s=route.max_retry_wait_s if route else _MAX_RETRY_WAIT_WITHOUT_ROUTE_S,
        continues=response_id,
    )


def _observe(
    gateway: Gateway,
    metrics: Metrics,
    row: LedgerRow,
    started: float,
    http_status: int,
    reason: FailureReason | None,
    attempts: list[Attempt],
    waited_s: float,
) -> None:
    row.status = "ok" if 200 <= http_status < 300 else "error"
    row.http_status = http_status
    row.error_type = reason.value if reason else None
    row.attempts = [dataclasses.asdict(attempt) for attempt in attempts]
    row.finished_at = utc_now()
    row.latency_ms = round((time.perf_counter() - started) * 1000, 3)
    server = gateway.config.server
    if server.metrics:
        record_metrics(metrics, row, reason=reason, policy=None, waited_s=waited_s, streamed=False)
    if server.log.access_log:
        log_access(row, reason=reason)
