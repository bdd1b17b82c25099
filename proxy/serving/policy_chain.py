"""The policy chain: the rules of `policies/`, built from one config version and
run in order before any upstream call. Checks of the request alone come first;
rate limits and budgets, which take from shared counters, come last, so a request
that a rule refuses takes nothing, and one that budgets refuse gives its rate
limits' tokens back."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from policies.base import Hold, Policy, Preflight, Settle
from policies.budgets import BudgetLimits, Budgets, SpentSince
from policies.cost_ceiling import CostCeiling
from policies.counters import Counters
from policies.image_parameters import ImageLimits, ImageParameters
from policies.launch_stage import LaunchStage
from policies.rate_limits import RateLimit, RateLimits
from policies.responses_model_guard import ResponsesModelGuard

from ..config import Config
from ..config.redaction import without_url_password
from ..config.schema import Budgets as BudgetSettings
from ..config.schema import RateLimits as RateLimitSettings
from ..state import MemoryCounters

log = logging.getLogger("tollgate")


class PolicyChain:
    def __init__(self, policies: Sequence[Policy]) -> None:
        self.policies = tuple(policies)
        # Does a policy keep counters in the state store (so readiness depends on it)?
        self.uses_state = any(isinstance(policy, (RateLimits, Budgets)) for policy in self.policies)

    async def admit(self, preflight: Preflight) -> list[Settle]:
        """Run every policy; what each holds for the request, to settle when it ends.
        A refusal (or a store that cannot be reached) releases what the earlier
        policies took."""
        holds: list[Hold] = []
        try:
            for policy in self.policies:
                if (hold := await policy.admit(preflight)) is not None:
                    holds.append(hold)
        except Exception:
            for hold in holds:
                try:
                    await hold.release()
                except Exception:  # the refusal is what the client must see
                    log.exception("could not release what a refused request held")
            raise
        return [hold.settle for hold in holds if hold.settle is not None]


def describe_policies(config: Config) -> str:
    """For `tollgate check`: the chain this config runs, and where its counters live."""
    names = [policy.name for policy in build_policies(config, MemoryCounters()).policies]
    store = without_url_password(config.state.url) + (" (Redis Cluster)" if config.state.cluster else "")
    return f"policies: {', '.join(names) or 'none'} (counters: {store})"


def build_policies(config: Config, counters: Counters, spent_since: SpentSince | None = None) -> PolicyChain:
    """`spent_since`: where budgets' counters start in a period (the ledger's spend); None: from zero."""
    chosen = config.policies
    policies: list[Policy] = []
    if chosen.responses_model_guard.enabled:
        policies.append(ResponsesModelGuard())
    if chosen.image_parameters.enabled:
        settings = chosen.image_parameters
        limits = ImageLimits(
            settings.max_n,
            settings.max_input_images,
            settings.max_input_mb * 1024 * 1024,
            settings.max_input_megapixels * 1_000_000,
        )
        policies.append(ImageParameters(limits))
    if chosen.launch_stage.enabled and any(key.stage == "validation" for key in config.keys or ()):
        policies.append(LaunchStage())
    if chosen.cost_ceiling.enabled and any(route.max_request_usd is not None for route in config.routes.values()):
        policies.append(CostCeiling())
    keys = config.keys or ()
    if chosen.rate_limits.enabled:
        key_limits = {key.id: _rate(key.rate_limits) for key in keys if key.rate_limits}
        team_limits = {name: _rate(team.rate_limits) for name, team in config.teams.items() if team.rate_limits}
        if key_limits or team_limits:
            policies.append(RateLimits(counters, keys=key_limits, teams=team_limits))
    if chosen.budgets.enabled:
        key_budgets = {key.id: _budget(key.budgets) for key in keys if key.budgets}
        team_budgets = {name: _budget(team.budgets) for name, team in config.teams.items() if team.budgets}
        if key_budgets or team_budgets:
            policies.append(Budgets(counters, keys=key_budgets, teams=team_budgets, spent_since=spent_since))
    return PolicyChain(policies)


def _rate(settings: RateLimitSettings) -> RateLimit:
    return RateLimit(settings.requests_per_minute, settings.images_per_minute)


def _budget(settings: BudgetSettings) -> BudgetLimits:
    return BudgetLimits(settings.daily_usd, settings.monthly_usd)
