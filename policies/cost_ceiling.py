"""The cost ceiling: a route may cap what one request can cost (`max_request_usd`).
The pre-flight estimate, retries counted, must fit under it; a request that would
not is refused before anything is spent."""

from __future__ import annotations

from .base import PolicyRefused, Preflight, Rule


class CostCeiling(Rule):
    name = "cost_ceiling"

    def check(self, preflight: Preflight) -> None:
        ceiling, estimate = preflight.max_request_usd, preflight.estimate_usd
        if ceiling is None or estimate is None or estimate <= ceiling:
            return
        if preflight.call.image is not None:
            cheaper = "a lower `quality`, a smaller `size` or fewer images (`n`)"
        else:
            cheaper = "a shorter input or a lower output limit"
        raise PolicyRefused(
            self.name,
            f"This request is estimated at ${estimate.normalize():f} (retries counted), above route "
            f"'{preflight.route}''s ceiling of ${ceiling.normalize():f} per request (`max_request_usd`). "
            f"Ask for {cheaper}, or ask the operator to raise the ceiling.",
        )
