"""Budgets per client key and per team, per day and per month (UTC), in USD.

A request is admitted only if its pre-flight estimate fits what every budget it
counts against has left; the estimate is reserved while it runs and settled to
the actual cost when it ends. Concurrent requests therefore cannot overspend: a
budget goes over only by what one request costs beyond its estimate.

A reservation lapses a little after the longest its request could run, so one
whose process died does not hold the budget for the rest of the period.

Each period's counter starts from what its owner had already spent in it, as the
ledger says: read when the store first has no counter for it (a new period, a
restart of an in-memory store, a Redis that lost its data), so a restart never
hands a budget back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import NoReturn

from providers.errors import FailureReason

from .base import Caller, Hold, Policy, PolicyRefused, Preflight
from .counters import NANO, Allowance, Counters, Reservation, StateUnavailable, Unstarted, to_nano

_KEPT_AFTER_PERIOD_S = 86_400  # a finished period's counter stays a day, for anyone looking
_SETTLE_MARGIN_S = 60  # past the longest a request can run: time for its settle to land

# What a key or team (scope, name) has spent since a date, in nano-dollars: the ledger's figure.
SpentSince = Callable[[str, str, dt.date], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    daily_usd: Decimal | None = None
    monthly_usd: Decimal | None = None


@dataclass(frozen=True, slots=True)
class _Budget:
    """One budget of one owner for the current period, as a counter."""

    allowance: Allowance
    scope: str  # key | team
    name: str
    period: str  # day | month
    limit_usd: Decimal
    starts: dt.date
    resets: dt.datetime

    @property
    def owner(self) -> str:
        return f"{self.scope} '{self.name}'"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Budgets(Policy):
    name = "budgets"

    def __init__(
        self,
        counters: Counters,
        *,
        keys: Mapping[str, BudgetLimits],
        teams: Mapping[str, BudgetLimits],
        spent_since: SpentSince | None = None,
        clock: Callable[[], dt.datetime] = _now,
    ) -> None:
        """`spent_since`: where a period's counter starts (the ledger's spend); without
        it, every counter starts from zero."""
        self._counters = counters
        self._limits = {"key": dict(keys), "team": dict(teams)}
        self._spent_since = spent_since
        self._clock = clock

    async def admit(self, preflight: Preflight) -> Hold | None:
        budgets = self.budgets_of(preflight.caller)
        if not budgets:
            return None
        allowances = tuple(budget.allowance for budget in budgets)
        reservation = Reservation(
            preflight.call.request_id,
            to_nano(preflight.estimate_usd or Decimal(0)),
            preflight.longest_s + _SETTLE_MARGIN_S,
        )
        outcome = await self._counters.reserve(allowances, reservation)
        if isinstance(outcome, Unstarted):
            allowances = await self._started(budgets, outcome)
            outcome = await self._counters.reserve(allowances, reservation)
        if isinstance(outcome, Unstarted):  # gone again as soon as started: the store is losing data
            raise StateUnavailable("its budget counters vanished as they were started")
        if outcome is not None:
            budget = next(b for b in budgets if b.allowance.key == outcome.allowance.key)
            self._refuse(budget, Decimal(outcome.used) * NANO, preflight.estimate_usd)

        async def settle(actual_usd: Decimal) -> None:
            await self._counters.settle(allowances, reservation.id, to_nano(actual_usd))

        async def release() -> None:
            await self._counters.settle(allowances, reservation.id, 0)

        return Hold(release, settle)

    def budgets_of(self, caller: Caller) -> list[_Budget]:
        """The caller's budgets for the periods that include now: its key's, then its team's."""
        now = self._clock()
        # Until the store says otherwise, a counter's start is known only without a ledger.
        starts_at = None if self._spent_since is not None else 0
        budgets = []
        for scope, name in caller.owners():
            limits = self._limits[scope].get(name)
            if limits is None:
                continue
            for period, usd in (("day", limits.daily_usd), ("month", limits.monthly_usd)):
                if usd is not None:
                    budgets.append(_budget(scope, name, period, usd, now, caller.counter_group, starts_at))
        return budgets

    async def _started(self, budgets: list[_Budget], unstarted: Unstarted) -> tuple[Allowance, ...]:
        """The allowances again, each one the store has no counter for starting from what
        its owner spent in its period. Several replicas may do this at once: the store
        keeps the first start, and never resets a counter that requests already use."""
        missing = {allowance.key for allowance in unstarted.allowances}

        async def allowance(budget: _Budget) -> Allowance:
            if budget.allowance.key not in missing:
                return budget.allowance
            spent = await self._spent_since(budget.scope, budget.name, budget.starts) if self._spent_since else 0
            return replace(budget.allowance, starts_at=spent)

        return tuple(await asyncio.gather(*(allowance(budget) for budget in budgets)))

    def _refuse(self, budget: _Budget, used: Decimal, estimate: Decimal | None) -> NoReturn:
        left = max(budget.limit_usd - used, Decimal(0))
        raise PolicyRefused(
            self.name,
            f"The {budget.owner} has ${_usd(left)} left of its {_PERIODS[budget.period]} budget of "
            f"${_usd(budget.limit_usd)} (spent and in flight: ${_usd(used)}), and this request is estimated at "
            f"${_usd(estimate or Decimal(0))}. The budget resets at {budget.resets:%Y-%m-%d %H:%M} UTC; send a "
            f"cheaper request, wait, or ask the operator to raise its `budgets.{_PERIODS[budget.period]}_usd`.",
            status=429,
            reason=FailureReason.BUDGET_EXCEEDED,
            code="budget_exceeded",
            retry_after_s=(budget.resets - self._clock()).total_seconds(),
        )


_PERIODS = {"day": "daily", "month": "monthly"}


def _budget(
    scope: str, name: str, period: str, usd: Decimal, now: dt.datetime, group: str, starts_at: int | None
) -> _Budget:
    today = now.date()
    if period == "day":
        starts, ends = today, today + dt.timedelta(days=1)
        period_id = today.isoformat()
    else:
        starts, ends = today.replace(day=1), (today.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        period_id = f"{today:%Y-%m}"
    resets = dt.datetime.combine(ends, dt.time(), dt.UTC)
    ttl_s = int((resets - now).total_seconds()) + _KEPT_AFTER_PERIOD_S
    allowance = Allowance(f"budget:{scope}:{name}:{period}:{period_id}", to_nano(usd), ttl_s, group, starts_at)
    return _Budget(allowance, scope, name, period, usd, starts, resets)


def _usd(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.000001')).normalize():f}"
