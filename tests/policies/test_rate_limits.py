"""Rate limits per key and team, requests and images per minute, with the wait in
`retry-after`; a request for more images than a minute allows is told to ask for fewer."""

from __future__ import annotations

import pytest

from policies.base import Caller, PolicyRefused
from policies.rate_limits import RateLimit, RateLimits
from providers.errors import FailureReason
from providers.types import ImageSettings, Surface

from ..preflights import preflight

WEB = Caller(key_id="web-app", team="growth", stage="production")


async def test_requests_per_minute_per_key(store):
    policy = RateLimits(store, keys={"web-app": RateLimit(requests_per_minute=2)}, teams={})
    for _ in range(2):
        await policy.admit(preflight(Surface.CHAT, model="gpt-5.4", image=None, caller=WEB))
    with pytest.raises(PolicyRefused) as refused:
        await policy.admit(preflight(Surface.CHAT, model="gpt-5.4", image=None, caller=WEB))
    error = refused.value
    assert (error.status, error.reason, error.policy) == (429, FailureReason.RATE_LIMITED, "rate_limits")
    assert "key 'web-app' is over its rate limit of 2 requests per minute" in error.message
    assert 1 <= int(error.headers["retry-after"]) <= 30


async def test_images_per_minute_per_team_count_n(store):
    policy = RateLimits(store, keys={}, teams={"growth": RateLimit(images_per_minute=5)})
    await policy.admit(preflight(caller=WEB, image=ImageSettings(n=3)))
    with pytest.raises(PolicyRefused, match="team 'growth' is over its rate limit of 5 images per minute"):
        await policy.admit(preflight(caller=WEB, image=ImageSettings(n=3)))
    await policy.admit(preflight(caller=WEB, image=ImageSettings(n=2)))  # what is left
    await policy.admit(preflight(Surface.CHAT, model="gpt-5.4", image=None, caller=WEB))  # text takes no images


async def test_more_images_than_a_minute_allows_is_a_400_not_a_wait(store):
    policy = RateLimits(store, keys={"web-app": RateLimit(images_per_minute=4)}, teams={})
    with pytest.raises(PolicyRefused) as refused:
        await policy.admit(preflight(caller=WEB, image=ImageSettings(n=5)))
    assert (
        refused.value.status == 400
        and refused.value.param == "n"
        and "could never be admitted" in refused.value.message
    )
    assert "retry-after" not in refused.value.headers


async def test_a_keys_and_its_teams_limits_are_taken_together(store):
    """One check takes from the key's bucket and its team's at once (on a Redis Cluster,
    in one slot), and a refusal by either takes from neither."""
    policy = RateLimits(
        store, keys={"web-app": RateLimit(requests_per_minute=3)}, teams={"growth": RateLimit(images_per_minute=4)}
    )
    for _ in range(2):
        await policy.admit(preflight(caller=WEB, image=ImageSettings(n=2)))
    with pytest.raises(PolicyRefused, match="team 'growth' is over its rate limit of 4 images per minute"):
        await policy.admit(preflight(caller=WEB, image=ImageSettings(n=1)))
    await policy.admit(preflight(Surface.CHAT, model="gpt-5.4", image=None, caller=WEB))  # the third request
    with pytest.raises(PolicyRefused, match="key 'web-app' is over its rate limit of 3 requests per minute"):
        await policy.admit(preflight(Surface.CHAT, model="gpt-5.4", image=None, caller=WEB))


async def test_a_request_never_admissible_is_refused_every_time_and_another_callers_buckets_are_its_own(store):
    """The buckets are made once per caller and image count: a refusal is not remembered
    as buckets, and callers do not share theirs."""
    policy = RateLimits(store, keys={"web-app": RateLimit(images_per_minute=4, requests_per_minute=1)}, teams={})
    for _ in range(2):
        with pytest.raises(PolicyRefused, match="could never be admitted"):
            await policy.admit(preflight(caller=WEB, image=ImageSettings(n=5)))
    other = Caller(key_id="batch", team="growth", stage="production")
    assert await policy.admit(preflight(caller=other, image=ImageSettings(n=5))) is None  # no limits of its own
    await policy.admit(preflight(caller=WEB, image=ImageSettings(n=1)))
    with pytest.raises(PolicyRefused, match="1 requests per minute"):
        await policy.admit(preflight(caller=WEB, image=ImageSettings(n=1)))
