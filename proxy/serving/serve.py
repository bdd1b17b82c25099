"""A proxied request's life, from the caller's key to the last byte of the answer:
authenticate, read the call, route it, estimate it, let the policies admit it,
dispatch it, and record each step in the request's ledger row (`Recording`).

The HTTP face reads what it needs of the request into an `Asked` and renders the
`Answer` this returns; errors are raised as `ProxyError`, carrying the answer's
headers, for the face to render too."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from policies.base import Preflight
from providers.errors import ProxyError
from providers.types import Call, Surface
from providers.values import value

from ..errors import InternalError
from ..ledger import DisabledLedger, Ledger
from ..pricing import TargetEstimate
from ..telemetry.metrics import Metrics
from .answers import Answer, Answered, Estimated, Streamed, answer_headers, price_headers
from .auth import Principal
from .background import Background
from .conversation_routing import bind_answer, bind_as_it_passes, binding_of, makes_conversations, plan_request
from .dispatch import RouteExhausted, dispatch
from .estimate_document import estimate_document
from .files import FileStore, makes_files
from .gateway import Gateway
from .recording import Recording
from .routing import RoutePlan
from .streaming import StreamOutcome, is_usage_only_chunk, relay_stream, with_stream_usage

log = logging.getLogger("tollgate")


@value
class Asked:
    """What the HTTP face read of a proxied request. The body is read by `read_call`,
    called only once the key is known good, so a stranger's body is never parsed."""

    surface: Surface
    request_id: str
    authorization: str | None
    read_call: Callable[[], Awaitable[Call]]
    estimate_only: bool
    purpose: str | None  # what the request is for (e.g. launch_check), kept in the ledger


@value
class Serving:
    """What a request is served with: the gateway it arrived on, and the app's own parts."""

    gateway: Gateway
    ledger: Ledger | DisabledLedger
    background: Background
    files: FileStore | None
    metrics: Metrics


async def serve(asked: Asked, serving: Serving) -> Answer:
    gateway, request_id = serving.gateway, asked.request_id
    recording = Recording(serving.ledger, serving.metrics, gateway, request_id, asked.surface)
    try:
        principal = gateway.keys.authenticate(asked.authorization)
        recording.identify(principal)
        call = await asked.read_call()
        plan = await plan_request(call, gateway, principal.owner)
        recording.row.route = plan.route
        principal.check_route(plan.route)
        if asked.estimate_only:
            headers = answer_headers(gateway, request_id, plan.route, attempts=())
            return Estimated(estimate_document(call, plan, gateway.pricer), headers)
        call, hide_usage = with_stream_usage(call)
        first = plan.targets[0]
        estimate = gateway.pricer.estimate(call, plan.route, first.provider, first.model)
        recording.routed(call, plan, estimate, purpose=asked.purpose)
        settles = await gateway.policies.admit(_preflight(gateway, call, plan, principal, estimate))
        recording.planned(settles, serving.background.spawn)
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
    surface = asked.surface
    headers = answer_headers(gateway, request_id, plan.route, exchange.attempts, exchange.reply.request_id)
    files = serving.files
    if reply.stream is not None:
        table = recording.estimate_at(exchange.target.provider, exchange.target.model).priced
        headers |= price_headers(table.table, table.source)
        headers |= {"cache-control": "no-cache", "x-accel-buffering": "no"}

        def ended(outcome: StreamOutcome) -> None:
            recording.streamed(exchange, outcome)
            if files is not None and makes_files(surface):
                serving.background.spawn(_keep_files(files, recording, surface, outcome.usage_events))

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
        return Streamed(relay, reply, headers)
    recording.answered(exchange)
    if reply.ok and makes_conversations(call):
        await bind_answer(
            gateway.conversations, bytes(reply.body), binding_of(exchange, plan, principal.owner), request_id
        )
    headers |= price_headers(recording.row.price_table, recording.row.price_source)
    if (cost := recording.cost_usd) is not None:
        headers["x-tollgate-cost-usd"] = format(cost, "f")
    after = None
    if files is not None and reply.ok and makes_files(surface):
        kept = files

        async def after() -> None:
            await _keep_files(kept, recording, surface, [bytes(reply.body)])

    return Answered(reply, headers, after)


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
