"""One request's ledger row, from intake to the last byte: who asked, where it was
routed, the estimate before the call, and after it the usage, the cost and every
attempt. The row is journaled when the upstream is about to be called and again
when the request ends, so an upstream bill never lacks its row."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

import orjson

from policies.base import PolicyRefused, Settle
from providers.answer_body import EMPTY, AnswerBody
from providers.errors import FailureReason, ProxyError
from providers.turn_writes import this_turn
from providers.types import Call, Surface

from ..ledger import Charge, CostBasis, DisabledLedger, Ledger, LedgerRow, from_nano, to_nano, utc_now
from ..pricing import Priced, TargetEstimate
from ..pricing.partial import closed_stream_usage
from ..pricing.usage import Usage, usage_from_body, usage_from_events
from ..telemetry.metrics import Metrics
from .auth import Principal
from .dispatch import Attempt, Exchange
from .gateway import Gateway
from .observation import log_access, record_metrics
from .routing import RoutePlan
from .streaming import StreamOutcome

# Runs work after the answer (settling budgets), tracked so that shutdown waits for it.
Spawn = Callable[[Coroutine[Any, Any, Any]], None]


class Recording:
    def __init__(
        self, ledger: Ledger | DisabledLedger, metrics: Metrics, gateway: Gateway, request_id: str, surface: Surface
    ) -> None:
        self._ledger = ledger
        self._metrics = metrics
        self._gateway = gateway
        self._started = time.perf_counter()
        self._call: Call | None = None
        self._plan: RoutePlan | None = None
        self._reason: FailureReason | None = None
        self._policy: str | None = None
        self._waited_s = 0.0
        self._streamed = False
        self._in_flight = False
        self._settles: list[Settle] = []
        self._spawn: Spawn | None = None
        self._estimates: dict[tuple[str, str], TargetEstimate] = {}
        self.row = LedgerRow(
            request_id=request_id, created_at=utc_now(), surface=surface.value, config_version=gateway.version
        )

    @property
    def cost_usd(self) -> Decimal | None:
        return from_nano(self.row.cost_nanousd)

    # --- before the upstream ------------------------------------------------------------

    def identify(self, principal: Principal) -> None:
        self.row.key_id, self.row.team = principal.key_id, principal.team

    def routed(self, call: Call, plan: RoutePlan, estimate: TargetEstimate, *, purpose: str | None) -> None:
        """The request has a route and an estimate: the row learns where it is going."""
        self._call, self._plan = call, plan
        self._estimates[(estimate.provider, estimate.model)] = estimate
        route = self._gateway.config.routes[plan.route]
        row = self.row
        row.route, row.route_owner, row.purpose, row.prompt_version = (
            plan.route,
            route.owner,
            purpose,
            call.prompt_version,
        )
        if call.image is not None:
            row.size, row.quality, row.output_format = call.image.size, call.image.quality, call.image.output_format
            if route.review == "required":
                row.review_status = "pending"
        self._bill_to(estimate.provider, estimate.model, estimate.priced)
        row.estimated_cost_nanousd = to_nano(estimate.priced.usd)

    def planned(self, settles: list[Settle], spawn: Spawn) -> None:
        """The policies admitted it: journal the row as started, for from here on the
        upstream may bill. `settles` are called with the actual cost when it ends."""
        self._settles, self._spawn = settles, spawn
        self._ledger.write(self.row)
        if self._gateway.config.server.metrics:
            assert self._plan is not None
            self._metrics.child(self._metrics.in_flight, self._plan.route).inc(1)
            self._in_flight = True

    # --- after it -----------------------------------------------------------------------

    def answered(self, exchange: Exchange) -> None:
        """A complete (non-streamed) answer: a success, or the upstream's own refusal."""
        self._take_attempts(exchange)
        reply = exchange.reply
        if reply.ok:
            self._settle(self._usage(exchange, body=reply.body), exchange)
            self._end("ok", reply.status)
        else:
            self._charge_failures(exchange.attempts)
            self._reason = FailureReason.INVALID_REQUEST  # the upstream's refusal is the client's to fix
            self._end("error", reply.status, error_type=_upstream_error_type(bytes(reply.body)))

    def streamed(self, exchange: Exchange, outcome: StreamOutcome) -> None:
        """A relayed stream ended: the upstream bills what it streamed, even if cut short."""
        self._take_attempts(exchange)
        self._streamed = True
        usage = self._usage(exchange, events=outcome.usage_events)
        self._reason = outcome.reason
        if outcome.client_closed:
            self._settle_closed(usage, outcome, exchange)
            self._end("client_closed", exchange.reply.status, error_type=FailureReason.CLIENT_CLOSED.value)
            return
        self._settle(usage, exchange)
        if outcome.error is None:
            self._end("ok", exchange.reply.status)
        else:
            reason = outcome.reason.value if outcome.reason else "stream_interrupted"
            self._end("error", exchange.reply.status, error_type=reason)

    def files_stored(self, urls: list[str]) -> None:
        """The answer's images are on disk: the row gains their URLs."""
        self.row.file_urls = urls
        self._ledger.write(self.row)

    def failed(self, error: ProxyError, attempts: list[Attempt] | None = None) -> None:
        self._reason = error.reason
        if isinstance(error, PolicyRefused):
            self._policy = self.row.policy = error.policy
        self._waited_s = getattr(error, "waited_s", 0.0)
        if attempts:
            self.row.attempts = [_attempt(attempt) for attempt in attempts]
            last = attempts[-1]
            self._bill_to(last.provider, last.model, None)
            self._charge_failures(attempts)
        error_type = "policy_refused" if isinstance(error, PolicyRefused) else error.code or error.reason.value
        self._end("error", error.status, error_type=error_type)

    # --- the arithmetic -----------------------------------------------------------------

    def _settle_closed(self, usage: Usage | None, outcome: StreamOutcome, exchange: Exchange) -> None:
        """A stream the client closed: the usage if it came, else the part of the bill that is known."""
        target = exchange.target
        estimated = self.estimate_at(target.provider, target.model).usage
        assert self._call is not None
        known, basis = closed_stream_usage(self._call.surface, estimated, outcome.relayed, usage)
        self._settle(known, exchange, basis=basis)

    def _settle(self, usage: Usage | None, exchange: Exchange, *, basis: CostBasis = "usage") -> None:
        """Charge the provider that answered: from its usage, else from the estimate."""
        target = exchange.target
        self._bill_to(target.provider, target.model, None)
        if usage is not None:
            self._record_usage(usage)
            priced = self._gateway.pricer.price(usage, self._route, target.provider, target.model)
        else:  # no usage came back: a stream cut short, an upstream that omits it
            priced = self.estimate_at(target.provider, target.model).priced
            basis = "estimate"
        row = self.row
        row.price_table, row.price_source = priced.table, priced.source
        row.cost_lines = [line.as_dict() for line in priced.cost.lines] if priced.cost else []
        if priced.cost is None:
            row.cost_basis = "unpriced"
        else:
            row.cost_basis = basis
            listed = priced.listed
            row.charges.append(
                Charge(
                    target.provider,
                    row.billing_owner or "",
                    priced.table,
                    priced.source,
                    to_nano(priced.usd) or 0,
                    basis,
                    list_cost_nanousd=to_nano(listed.total_usd) if listed else None,
                    list_price_table=listed.table if listed else None,
                )
            )
        self._charge_failures(exchange.attempts[:-1])

    def _charge_failures(self, attempts: list[Attempt]) -> None:
        """Failed or refused tries, billed as each provider says it bills them (default: not at all)."""
        for attempt in attempts:
            estimate = self.estimate_at(attempt.provider, attempt.model)
            if estimate.failed_attempt_usd and estimate.priced.cost is not None:
                self.row.charges.append(
                    Charge(
                        attempt.provider,
                        estimate.billing_owner,
                        estimate.priced.table,
                        estimate.priced.source,
                        to_nano(estimate.failed_attempt_usd) or 0,
                        "estimate",
                    )
                )

    def estimate_at(self, provider: str, model: str) -> TargetEstimate:
        """The estimate on `provider`'s table, made once per provider a request meets."""
        key = (provider, model)
        if key not in self._estimates:
            assert self._call is not None
            self._estimates[key] = self._gateway.pricer.estimate(self._call, self._route, provider, model)
        return self._estimates[key]

    @property
    def _route(self) -> str:
        assert self._plan is not None
        return self._plan.route

    def _usage(
        self, exchange: Exchange, *, body: AnswerBody = EMPTY, events: list[bytes] | None = None
    ) -> Usage | None:
        call = self._call
        assert call is not None
        model, image_model = exchange.target.model, _image_model(call)
        if events is not None:
            return usage_from_events(call.surface, events, model=model, image_model=image_model)
        return usage_from_body(call.surface, body, model=model, image_model=image_model)

    def _record_usage(self, usage: Usage) -> None:
        text_input = cached_input = image_input = text_output = image_output = images = 0
        drawn = None  # the last part that made images
        for part in usage:  # one pass: one model's usage, or two with the Responses image tool
            text_input += part.text_input
            cached_input += part.cached_text_input + part.cached_image_input
            image_input += part.image_input
            text_output += part.text_output
            image_output += part.image_output
            if part.images:
                images += part.images
                drawn = part
        row = self.row
        row.input_text_tokens, row.cached_input_tokens, row.input_image_tokens = text_input, cached_input, image_input
        row.output_text_tokens, row.output_image_tokens = text_output, image_output
        if drawn is not None:
            row.images = images
            row.size = drawn.size or row.size
            row.quality = drawn.quality or row.quality

    def _bill_to(self, provider: str, model: str, priced: Priced | None) -> None:
        row = self.row
        row.provider, row.upstream_model = provider, model
        row.billing_owner = self._gateway.billing_owner(provider)
        row.simulated = provider in self._gateway.simulated
        if priced is not None:
            row.price_table, row.price_source = priced.table, priced.source

    def _take_attempts(self, exchange: Exchange) -> None:
        self._waited_s = exchange.waited_s
        self.row.attempts = [_attempt(attempt) for attempt in exchange.attempts]
        self.row.upstream_request_id = exchange.reply.request_id

    def _end(self, status: str, http_status: int, *, error_type: str | None = None) -> None:
        row = self.row
        row.status = status  # type: ignore[assignment]
        if row.review_status == "pending" and status != "ok" and not row.images:
            row.review_status = "not_required"  # nothing was made, nothing to review
        row.http_status = http_status
        row.error_type = error_type
        row.finished_at = utc_now()
        row.latency_ms = round((time.perf_counter() - self._started) * 1000, 3)
        if row.cost_basis == "unpriced" and not row.charges:
            row.cost_nanousd = None
        else:
            row.cost_nanousd = sum(charge.cost_nanousd for charge in row.charges)
        self._ledger.write(row)
        # The rest waits for the end of the loop's turn, after the turn's writes: by then the
        # answer is on its way and the client does not wait for it.
        this_turn(asyncio.get_running_loop()).then(self._after_answer)

    def _after_answer(self) -> None:
        """The policies' holds settled at the actual cost; the metrics; the access line."""
        if self._settles and self._spawn is not None:
            self._spawn(_settle(self._settles, from_nano(self.row.cost_nanousd) or Decimal(0)))
        server = self._gateway.config.server
        if server.metrics:
            if self._in_flight:
                self._metrics.child(self._metrics.in_flight, self.row.route).inc(-1)
            record_metrics(
                self._metrics,
                self.row,
                reason=self._reason,
                policy=self._policy,
                waited_s=self._waited_s,
                streamed=self._streamed,
            )
        if server.log.access_log:
            log_access(self.row, reason=self._reason)


async def _settle(settles: list[Settle], cost_usd: Decimal) -> None:
    for settle in settles:
        await settle(cost_usd)


def _attempt(attempt: Attempt) -> dict:
    return {
        "provider": attempt.provider,
        "model": attempt.model,
        "status": attempt.status,
        "latency_ms": attempt.latency_ms,
        "error": attempt.error,
    }


def _image_model(call: Call) -> str | None:
    return call.image.model if call.image is not None and call.surface is Surface.RESPONSES else None


def _upstream_error_type(body: bytes) -> str:
    """The upstream's own error code (e.g. moderation_blocked), for the row."""
    try:
        error = orjson.loads(body).get("error") or {}
        return error.get("code") or error.get("type") or "upstream_error"
    except (orjson.JSONDecodeError, AttributeError):
        return "upstream_error"
