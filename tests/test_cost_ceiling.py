"""The cost ceiling refuses a request whose estimate (retries counted) is above the
route's `max_request_usd`, and says what would bring it under."""

from __future__ import annotations

import pytest

from policies.base import PolicyRefused
from policies.cost_ceiling import CostCeiling
from providers.types import Surface

from .preflights import preflight

ceiling = CostCeiling()


def test_a_request_estimated_above_the_ceiling_is_refused():
    with pytest.raises(PolicyRefused) as refused:
        ceiling.check(preflight(estimate_usd="0.633", max_request_usd="0.50"))
    error = refused.value
    assert (error.status, error.policy) == (400, "cost_ceiling")
    assert "$0.633" in error.message and "$0.5 per request" in error.message
    assert "lower `quality`" in error.message


def test_a_request_at_or_under_the_ceiling_passes():
    ceiling.check(preflight(estimate_usd="0.50", max_request_usd="0.50"))
    ceiling.check(preflight(estimate_usd="0.01", max_request_usd="0.50"))


def test_without_a_ceiling_or_an_estimate_there_is_nothing_to_compare():
    ceiling.check(preflight(estimate_usd="99", max_request_usd=None))
    ceiling.check(preflight(estimate_usd=None, max_request_usd="0.01"))


def test_a_chat_request_is_told_to_shorten_rather_than_lower_quality():
    with pytest.raises(PolicyRefused, match="shorter input"):
        ceiling.check(preflight(Surface.CHAT, model="gpt-5.4", estimate_usd="2", max_request_usd="1"))
