"""Budgets per key and team, per day and month: admitted only within what is left,
the estimate reserved while the request runs and settled to its actual cost, and
a refusal that says who is over, by how much, and when it resets."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import pytest

from policies.base import Caller, PolicyRefused
from policies.budgets import BudgetLimits, Budgets
from providers.errors import FailureReason

from .preflights import preflight

NOW = dt.datetime(2026, 11, 30, 18, 0, tzinfo=dt.UTC)
WEB = Caller(key_id="web-app", team="growth", stage="production")


def budgets(store, *, key_daily: str | None = None, team_monthly: str | None = None) -> Budgets:
    keys = {"web-app": BudgetLimits(daily_usd=Decimal(key_daily))} if key_daily else {}
    teams = {"growth": BudgetLimits(monthly_usd=Decimal(team_monthly))} if team_monthly else {}
    return Budgets(store, keys=keys, teams=teams, clock=lambda: NOW)


async def test_requests_are_admitted_until_the_budget_would_be_passed(store):
    policy = budgets(store, key_daily="0.10")
    holds = [await policy.admit(preflight(caller=WEB, estimate_usd="0.04")) for _ in range(2)]
    assert all(holds)
    with pytest.raises(PolicyRefused) as refused:
        await policy.admit(preflight(caller=WEB, estimate_usd="0.04"))  # 0.12 would pass 0.10
    error = refused.value
    assert (error.status, error.policy, error.reason, error.code) == (
        429,
        "budgets",
        FailureReason.BUDGET_EXCEEDED,
        "budget_exceeded",
    )
    assert "key 'web-app' has $0.02 left of its daily budget of $0.1" in error.message
    assert "estimated at $0.04" in error.message and "resets at 2026-12-01 00:00 UTC" in error.message
    assert "`budgets.daily_usd`" in error.message
    assert error.headers["retry-after"] == str(6 * 3600)  # until midnight UTC


async def test_settling_to_the_actual_cost_frees_what_the_estimate_overstated(store):
    policy = budgets(store, key_daily="0.10")
    hold = await policy.admit(preflight(caller=WEB, estimate_usd="0.08"))
    await hold.settle(Decimal("0.03"))  # it cost less than estimated
    assert await policy.admit(preflight(caller=WEB, estimate_usd="0.07"))  # 0.03 + 0.07 fits


async def test_the_team_budget_counts_every_key_of_the_team(store):
    policy = budgets(store, team_monthly="0.05")
    other = Caller(key_id="batch", team="growth", stage="production")
    await policy.admit(preflight(caller=WEB, estimate_usd="0.03"))
    with pytest.raises(PolicyRefused, match=r"team 'growth' has \$0.02 left of its monthly budget"):
        await policy.admit(preflight(caller=other, estimate_usd="0.03"))


async def test_a_caller_without_budgets_is_not_counted(store):
    policy = budgets(store, key_daily="0.01")
    assert await policy.admit(preflight(caller=Caller("other", None, "production"), estimate_usd="5")) is None


async def test_concurrent_requests_cannot_overspend(store):
    """Fifty requests at once against room for ten: exactly ten are admitted."""
    policy = budgets(store, key_daily="1.00")

    async def one():
        try:
            hold = await policy.admit(preflight(caller=WEB, estimate_usd="0.10"))
        except PolicyRefused:
            return None
        await asyncio.sleep(0)
        await hold.settle(Decimal("0.10"))
        return hold

    admitted = [s for s in await asyncio.gather(*(one() for _ in range(50))) if s]
    assert len(admitted) == 10


async def test_a_new_day_starts_a_new_budget(store):
    moments = [NOW]
    policy = Budgets(
        store, keys={"web-app": BudgetLimits(daily_usd=Decimal("0.05"))}, teams={}, clock=lambda: moments[0]
    )
    await policy.admit(preflight(caller=WEB, estimate_usd="0.05"))
    with pytest.raises(PolicyRefused):
        await policy.admit(preflight(caller=WEB, estimate_usd="0.01"))
    moments[0] = NOW + dt.timedelta(hours=7)
    assert await policy.admit(preflight(caller=WEB, estimate_usd="0.05"))


async def test_each_period_starts_from_what_the_ledger_says_its_owner_spent(store):
    """The store has no counter yet: each starts from the owner's spend in its period,
    asked once; from then on the store counts without asking."""
    spent = {("key", "web-app", dt.date(2026, 11, 30)): 60_000_000, ("team", "growth", dt.date(2026, 11, 1)): 0}
    asked: list[tuple[str, str, dt.date]] = []

    async def spent_since(scope: str, name: str, since: dt.date) -> int:
        asked.append((scope, name, since))
        return spent[(scope, name, since)]

    policy = Budgets(
        store,
        keys={"web-app": BudgetLimits(daily_usd=Decimal("0.10"))},
        teams={"growth": BudgetLimits(monthly_usd=Decimal("1.00"))},
        spent_since=spent_since,
        clock=lambda: NOW,
    )
    assert await policy.admit(preflight(caller=WEB, estimate_usd="0.03"))  # 0.06 spent today + 0.03
    assert sorted(asked) == sorted(spent)
    with pytest.raises(PolicyRefused, match=r"key 'web-app' has \$0.01 left of its daily budget"):
        await policy.admit(preflight(caller=WEB, estimate_usd="0.03"))
    assert len(asked) == 2  # started once: the ledger is not read again


async def test_a_keys_counters_share_its_teams_group_and_a_lone_key_has_its_own(store):
    policy = budgets(store, key_daily="0.10", team_monthly="1.00")
    assert {budget.allowance.group for budget in policy.budgets_of(WEB)} == {"team:growth"}
    lone = Budgets(store, keys={"solo": BudgetLimits(daily_usd=Decimal("1"))}, teams={}, clock=lambda: NOW)
    (budget,) = lone.budgets_of(Caller(key_id="solo", team=None, stage="production"))
    assert budget.allowance.group == "key:solo"
    assert await lone.admit(preflight(caller=Caller("solo", None, "production"), estimate_usd="0.5"))
