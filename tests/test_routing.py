"""Route plans: weighted order among targets, then fallbacks; unknown models are 404s."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from proxy.config.schema import Route
from proxy.errors import UnknownRoute
from proxy.serving.routing import Router


def route(targets, fallbacks=(), **settings) -> Route:
    return Route.model_validate(
        {
            "targets": [{"provider": p, "model": "m", "weight": w} for p, w in targets],
            "fallbacks": [{"provider": p, "model": "m"} for p in fallbacks],
            **settings,
        }
    )


def test_targets_come_first_in_weighted_order_then_fallbacks_in_order():
    router = Router({"chat": route([("a", 3), ("b", 1)], fallbacks=("c", "d"))}, rng=random.Random(7))
    firsts = Counter()
    for _ in range(4000):
        plan = router.plan("chat")
        assert [t.provider for t in plan.targets[2:]] == ["c", "d"]
        assert {t.provider for t in plan.targets[:2]} == {"a", "b"}
        assert [t.fallback for t in plan.targets] == [False, False, True, True]
        firsts[plan.targets[0].provider] += 1
    assert 0.72 < firsts["a"] / 4000 < 0.78  # weight 3 of 4


def test_a_target_with_weight_zero_is_drained():
    router = Router({"chat": route([("a", 1), ("b", 0)])})
    assert {tuple(t.provider for t in router.plan("chat").targets) for _ in range(50)} == {("a",)}


def test_the_plan_carries_retries_and_the_shorter_of_the_two_timeouts():
    router = Router({"img": route([("a", 1)], timeout_s=180, retries=2, max_retry_wait_s=5)})
    plan = router.plan("img")
    assert (plan.tries_per_target, plan.timeout_s, plan.max_retry_wait_s) == (3, 180, 5)
    assert router.plan("img", timeout_s=2.5).timeout_s == 2.5
    assert router.plan("img", timeout_s=900).timeout_s == 180  # a client may shorten, never lengthen


def test_an_unknown_model_is_a_404_listing_the_routes():
    router = Router({"gpt-image-2": route([("a", 1)]), "gpt-5.4": route([("a", 1)])})
    with pytest.raises(UnknownRoute) as caught:
        router.plan("gpt-image-3")
    assert caught.value.status == 404
    assert caught.value.param == "model"
    assert "'gpt-image-3'" in caught.value.message and "gpt-5.4, gpt-image-2" in caught.value.message


def test_a_follow_up_is_planned_on_its_provider_alone_whatever_its_weight():
    chat = Route.model_validate(
        {
            "targets": [{"provider": "a", "model": "m", "weight": 1}, {"provider": "b", "model": "m-old", "weight": 0}],
            "fallbacks": [{"provider": "b", "model": "m"}, {"provider": "c", "model": "m"}],
            "retries": 2,
            "timeout_s": 30,
        }
    )
    router = Router({"chat": chat})
    plan = router.plan_on("chat", "b", "m", continues="resp_1", timeout_s=5)
    assert [(t.provider, t.model, t.fallback) for t in plan.targets] == [("b", "m", False)]  # its own deployment
    assert (plan.tries_per_target, plan.timeout_s, plan.continues) == (3, 5, "resp_1")
    switched = router.plan_on("chat", "b", "another-model", continues="resp_1")
    assert [(t.provider, t.model) for t in switched.targets] == [("b", "m-old")]  # drained, still its home
    assert router.plan_on("chat", "d", "m", continues="resp_1") is None
    with pytest.raises(UnknownRoute):
        router.plan_on("chatt", "a", "m", continues="resp_1")
