"""Step 6's arithmetic: the estimate for the tries a request took, and how far the
actual cost is from it."""

from __future__ import annotations

from decimal import Decimal

from proxy.launch.steps.cost import deviation, expected_cost

ESTIMATES = {
    "openai": {"estimated_cost_usd": "0.041235", "failed_attempt_usd": "0.000075"},
    "acme": {"estimated_cost_usd": "0.046", "failed_attempt_usd": "0"},
}


def attempts(*providers: str) -> list[dict]:
    return [{"provider": provider} for provider in providers]


def test_one_try_is_expected_to_cost_its_estimate():
    row = {"provider": "openai", "attempts": attempts("openai")}
    assert expected_cost(ESTIMATES, row) == Decimal("0.041235")


def test_failed_tries_add_what_their_own_provider_bills_for_them():
    row = {"provider": "acme", "attempts": attempts("openai", "openai", "acme")}
    assert expected_cost(ESTIMATES, row) == Decimal("0.046") + 2 * Decimal("0.000075")


def test_deviation_is_a_fraction_of_the_estimate():
    assert deviation(Decimal("0.04"), Decimal("0.05")) == Decimal("0.25")
    assert deviation(Decimal("0.04"), Decimal("0.03")) == Decimal("0.25")
    assert deviation(Decimal("0.04"), Decimal("0.0501")) > Decimal("0.25")


def test_nothing_expected_is_met_only_by_nothing_spent():
    assert deviation(Decimal(0), Decimal(0)) == 0
    assert deviation(Decimal(0), Decimal("0.01")) is None
