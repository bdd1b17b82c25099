"""The one loop that decides: try each planned target, retry what another try may
cure, fall back when a provider is spent, and end in one error when all are.
Providers only translate; every attempt is kept for the ledger. A plan pinned to
the provider that holds a conversation never falls back: its error names that
provider.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from providers.base import Provider, UpstreamReply
from providers.errors import (
    ProxyError,
    UpstreamFailure,
    UpstreamRateLimited,
    UpstreamRejectedCredentials,
    UpstreamServerError,
)
from providers.types import Call
from providers.values import value

from .routing import PlannedTarget, RoutePlan

_BACKOFF_BASE_S = 0.25


@value
class Attempt:
    """One try at one provider, as the ledger records it."""

    provider: str
    model: str
    status: int | None  # the upstream's HTTP status; None when no answer came
    latency_ms: float
    error: str | None  # a FailureReason; None when the answer was relayed

    def describe(self) -> str:
        outcome = f"HTTP {self.status}" if self.status is not None else "no answer"
        return f"{self.provider}: {self.error or 'ok'} ({outcome}, {self.latency_ms:.0f} ms)"


@dataclass(slots=True)
class Exchange:
    """The answer to relay, who gave it, and every attempt it took."""

    reply: UpstreamReply
    target: PlannedTarget
    attempts: list[Attempt]
    waited_s: float = 0.0  # spent waiting between retries


class RouteExhausted(ProxyError):
    """Every planned attempt failed. Carries the last failure's status and reason."""

    def __init__(
        self,
        route: str,
        attempts: list[Attempt],
        last: UpstreamFailure,
        waited_s: float = 0.0,
        *,
        continues: str | None = None,
    ) -> None:
        tried = "; ".join(attempt.describe() for attempt in attempts)
        headers = {}
        if isinstance(last, UpstreamRateLimited) and last.retry_after_s is not None:
            headers["retry-after"] = str(max(1, round(last.retry_after_s)))
        if continues is None:
            message = (
                f"Every provider for route '{route}' failed. Last: {last.message}. Attempts: {tried}. "
                "Retry later; if this persists, the route's providers need attention."
            )
        else:
            provider = attempts[-1].provider
            message = (
                f"Provider '{provider}' holds '{continues}', which this request continues, and a conversation "
                f"cannot move to another provider; it failed: {last.message}. Attempts: {tried}. Retry later; "
                f"if this persists, provider '{provider}' needs attention (a new conversation can go elsewhere)."
            )
        super().__init__(message, code=last.code, headers=headers)
        self.status = last.status
        self.error_type = last.error_type
        self.reason = last.reason
        self.attempts = attempts
        self.waited_s = waited_s  # spent waiting between retries: not the proxy's own time


Sleep = Callable[[float], Awaitable[None]]


async def dispatch(
    call: Call, plan: RoutePlan, providers: Mapping[str, Provider], *, sleep: Sleep = asyncio.sleep
) -> Exchange:
    attempts: list[Attempt] = []
    waited_s = 0.0
    last_failure: UpstreamFailure | None = None
    for target in plan.targets:
        provider = providers[target.provider]
        for tried in range(plan.tries_per_target):
            if tried:
                wait = _wait_before_retry(last_failure, tried)
                await sleep(wait)
                waited_s += wait
            started = time.perf_counter()
            try:
                reply = await provider.send(call, target.model, plan.timeout_s)
            except UpstreamFailure as failure:
                attempts.append(Attempt(target.provider, target.model, None, _ms_since(started), failure.reason))
                last_failure = failure
                continue
            failure = _failure_of(reply, target, pinned=plan.continues is not None)
            attempts.append(
                Attempt(target.provider, target.model, reply.status, _ms_since(started), failure and failure.reason)
            )
            if failure is None:
                return Exchange(reply, target, attempts, waited_s)
            await reply.aclose()
            last_failure = failure
            if not failure.retry_same_provider:
                break
            if failure.retry_after_s is not None and failure.retry_after_s > plan.max_retry_wait_s:
                break  # waiting that long here is worse than asking the next provider now
    assert last_failure is not None, "a route plan has at least one target"
    raise RouteExhausted(plan.route, attempts, last_failure, waited_s, continues=plan.continues)


def _failure_of(reply: UpstreamReply, target: PlannedTarget, *, pinned: bool = False) -> UpstreamFailure | None:
    """None for an answer to relay: a success, or a refusal that is the client's to fix.
    A pinned plan has nowhere else to go, so its provider's 404 (a deleted response,
    a conversation it does not know) is that provider's answer, not a wrong config."""
    status = reply.status
    if reply.ok:
        return None
    who = f"provider '{target.provider}'"
    if status == 429:
        return UpstreamRateLimited(f"{who} is rate limiting (429)", retry_after_s=reply.retry_after_s())
    if status >= 500 or status in (408, 409):
        return UpstreamServerError(f"{who} answered {status}", retry_after_s=reply.retry_after_s())
    if status in (401, 403) or (status == 404 and not pinned):
        return UpstreamRejectedCredentials(
            f"{who} refused our request with {status}: check its api_key, base_url and the model name '{target.model}'"
        )
    return None  # e.g. 400 bad size, moderation refusal: the upstream's own words go back to the client


def _wait_before_retry(failure: UpstreamFailure | None, tried: int) -> float:
    if failure is not None and failure.retry_after_s is not None:
        return failure.retry_after_s
    return random.uniform(0, _BACKOFF_BASE_S * 2 ** (tried - 1))  # full jitter


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
