"""The policy chain: the rules of `policies/`, built from one config version and
run in order before any upstream call. Checks of the request alone come first;
rate limits and budgets, which take from shared counters, come last, so a request
that a rule refuses takes nothing, and one that budgets refuse gives its rate
limits' tokens back."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from policies.base import Hold, Policy, Preflight, Settle
from policies.budgets import Budgets, SpentSince
from policies.config import Built
from policies.cost_ceiling import CostCeiling
from policies.counters import Counters
from policies.image_parameters import ImageParameters
from policies.launch_stage import LaunchStage
from policies.rate_limits import RateLimits
from policies.responses_model_guard import ResponsesModelGuard

from ..config import Config
from ..config.redaction import without_url_password
from ..state import MemoryCounters

log = logging.getLogger("tollgate")

# In this order: the checks of the request alone, then what takes from shared counters.
CHAIN: tuple[type[Policy], ...] = (
    ResponsesModelGuard,
    ImageParameters,
    LaunchStage,
    CostCeiling,
    RateLimits,
    Budgets,
)


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
    built = Built(counters, spent_since)
    return PolicyChain([policy for kind in CHAIN if (policy := kind.from_config(config, built)) is not None])
