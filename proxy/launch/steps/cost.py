"""Step 6: the pre-flight estimate for the target settings beside what step 4
actually cost, within the route's `cost_tolerance`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..context import LaunchContext
from ..step import Findings, Skip, Step
from .images import TARGET_PROMPT, target_settings


def deviation(expected: Decimal, actual: Decimal) -> Decimal | None:
    """How far `actual` is from `expected`, as a fraction of it; None when nothing was expected but something cost."""
    if expected == 0:
        return Decimal(0) if actual == 0 else None
    return abs(actual - expected) / expected


def expected_cost(estimates: dict[str, dict[str, Any]], row: dict[str, Any]) -> Decimal:
    """The estimate for the tries the request took: the answering provider's estimate,
    plus what each failed try costs on its own provider (its retries counted)."""
    expected = Decimal(estimates[row["provider"]]["estimated_cost_usd"])
    for attempt in row["attempts"][:-1]:
        if attempt["provider"] in estimates:
            expected += Decimal(estimates[attempt["provider"]]["failed_attempt_usd"])
    return expected


def check_cost(launch: LaunchContext, found: Findings) -> None:
    row, target = launch.target_row, launch.route.target
    if row is None or target is None:
        raise Skip("it compares with the actual cost of step 4, which did not succeed")
    document = launch.api.estimate(model=launch.route_name, prompt=TARGET_PROMPT, n=1, **target_settings(target))
    estimates = {estimate["provider"]: estimate for estimate in document["estimates"]}
    provider = row["provider"]
    if not found.require(provider in estimates, f"the estimate has no entry for {provider}, which served step 4"):
        return
    served = estimates[provider]
    if not found.require(served["estimated_cost_usd"] is not None, f"no estimate on {provider}: {served['unpriced']}"):
        return
    expected, actual = expected_cost(estimates, row), Decimal(row["cost_usd"])
    found.note(
        f"estimate ${served['estimated_cost_usd']} on {provider} ({served['price_table']}); with "
        f"{document['retries']} retr{'y' if document['retries'] == 1 else 'ies'} at most ${served['with_retries_usd']}"
    )
    found.note(f"actual ${actual} (step 4, {len(row['attempts'])} attempt(s); expected ${expected})")
    tolerance = launch.route.cost_tolerance
    off = deviation(expected, actual)
    if found.require(
        off is not None and off <= tolerance,
        f"the actual cost ${actual} is {_percent(off)} off the estimate ${expected}, beyond the route's "
        f"cost_tolerance {_percent(tolerance)}",
    ):
        found.note(f"off by {_percent(off)}, within {_percent(tolerance)}")


def _percent(fraction: Decimal | None) -> str:
    return "infinitely" if fraction is None else f"{fraction * 100:.1f}%"


COST_CHECK = Step(
    6,
    "Cost check",
    "the pre-flight estimate for the target settings (retries counted) and step 4's actual cost differ by no more "
    "than the route's cost_tolerance (default 25%)",
    check_cost,
)
