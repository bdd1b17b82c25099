"""From a model name to a route plan: the targets to try, in order.

A route's targets share its traffic by weight; the one drawn first is tried
first and the others follow in weighted order, then the fallbacks as listed.
A follow-up of a conversation is planned on the one provider that holds it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from providers.values import value

from ..config import Route
from ..errors import UnknownRoute


@value
class PlannedTarget:
    provider: str
    model: str  # the upstream's name for the model
    fallback: bool


@value
class RoutePlan:
    route: str
    targets: tuple[PlannedTarget, ...]  # in the order they are tried
    tries_per_target: int  # 1 + the route's retries
    timeout_s: float  # bound on each attempt
    max_retry_wait_s: float
    continues: str | None = None  # the response or conversation that pins this plan to its one target

    @property
    def longest_s(self) -> float:
        """The longest the request can take: every try of every target to its timeout,
        with the longest wait before each."""
        return len(self.targets) * self.tries_per_target * (self.timeout_s + self.max_retry_wait_s)


class Router:
    def __init__(self, routes: Mapping[str, Route], rng: random.Random | None = None) -> None:
        self._routes = dict(routes)
        self._rng = rng or random.Random()

    @property
    def names(self) -> list[str]:
        return list(self._routes)

    def route(self, model: str) -> Route:
        try:
            return self._routes[model]
        except KeyError:
            raise UnknownRoute(
                f"No route for model '{model}'. This proxy routes: {', '.join(sorted(self._routes))}. "
                "Send one of those as `model`, or ask the operator to add a route.",
                param="model",
            ) from None

    def plan(self, model: str, *, timeout_s: float | None = None) -> RoutePlan:
        route = self.route(model)
        ordered = _weighted_order(route, self._rng)
        targets = tuple(PlannedTarget(t.provider, t.model, fallback=False) for t in ordered)
        targets += tuple(PlannedTarget(t.provider, t.model, fallback=True) for t in route.fallbacks)
        return _plan(model, route, targets, timeout_s)

    def plan_on(
        self, model: str, provider: str, upstream_model: str, *, continues: str, timeout_s: float | None = None
    ) -> RoutePlan | None:
        """A follow-up's plan: the route's target on `provider` alone, whatever its weight
        (0 included) and without fallbacks; the deployment `upstream_model` where the
        route still has it. None when the route no longer sends to `provider`."""
        route = self.route(model)
        on_provider = [target for target in (*route.targets, *route.fallbacks) if target.provider == provider]
        if not on_provider:
            return None
        chosen = next((target for target in on_provider if target.model == upstream_model), on_provider[0])
        target = PlannedTarget(chosen.provider, chosen.model, fallback=False)
        return _plan(model, route, (target,), timeout_s, continues=continues)


def _plan(
    model: str,
    route: Route,
    targets: tuple[PlannedTarget, ...],
    timeout_s: float | None,
    *,
    continues: str | None = None,
) -> RoutePlan:
    return RoutePlan(
        route=model,
        targets=targets,
        tries_per_target=1 + route.retries,
        timeout_s=min(route.timeout_s, timeout_s) if timeout_s else route.timeout_s,
        max_retry_wait_s=route.max_retry_wait_s,
        continues=continues,
    )


def _weighted_order(route: Route, rng: random.Random) -> list:
    """Weighted sampling without replacement (Efraimidis–Spirakis): each target's
    chance of coming first is its share of the weight. Weight 0 drains a target."""
    live = [target for target in route.targets if target.weight > 0]
    if len(live) == 1:
        return live
    return sorted(live, key=lambda target: rng.random() ** (1 / target.weight), reverse=True)
