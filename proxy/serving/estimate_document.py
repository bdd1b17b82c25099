"""The estimate as a document: per candidate provider, the pre-flight cost with the
table it comes from. What `x-tollgate-estimate-only: true` returns and
`tollgate estimate` prints."""

from __future__ import annotations

from typing import Any

from providers.types import Call

from ..pricing.cost import usd
from ..pricing.pricer import Pricer
from .routing import RoutePlan


def estimate_document(call: Call, plan: RoutePlan, pricer: Pricer) -> dict[str, Any]:
    retries = plan.tries_per_target - 1
    estimates = []
    for target in plan.targets:
        estimate = pricer.estimate(call, plan.route, target.provider, target.model)
        priced = estimate.priced
        worst = estimate.with_retries_usd(retries)
        estimates.append(
            {
                "provider": target.provider,
                "model": target.model,
                "fallback": target.fallback,
                "billing_owner": estimate.billing_owner,
                "price_table": priced.table,
                "price_source": priced.source,
                "estimated_cost_usd": usd(priced.usd) if priced.usd is not None else None,
                # with the route's retries, as this provider bills failed tries
                "with_retries_usd": usd(worst) if worst is not None else None,
                "failed_attempt_usd": usd(estimate.failed_attempt_usd),
                "unpriced": priced.unpriced,
                "lines": [line.as_dict() for line in priced.cost.lines] if priced.cost else [],
            }
        )
    return {"object": "tollgate.estimate", "route": plan.route, "retries": retries, "estimates": estimates}
