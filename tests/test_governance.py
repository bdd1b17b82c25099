"""The policy chain as the config builds it: only the policies the config gives work
to, checks of the request before shared counters, and a refusal that releases what
earlier policies reserved."""

from __future__ import annotations

from decimal import Decimal

import pytest

from policies.base import Caller, PolicyRefused
from policies.counters import Allowance, Bucket, StateUnavailable
from providers.types import ImageSettings
from proxy.config import parse_config
from proxy.serving.policy_chain import build_policies
from proxy.state import MemoryCounters

from .preflights import preflight

BASE = """
providers:
  openai: {kind: openai, api_key: k, billing_owner: openai/org, price_table: openai-official}
routes:
  gpt-image-2:
    targets: [{provider: openai, model: gpt-image-2}]
"""
GOVERNED = (
    BASE
    + """    max_request_usd: 0.10
keys:
  - {id: web-app, key: sk-web, team: growth, stage: validation,
     budgets: {daily_usd: 1.00}, rate_limits: {requests_per_minute: 1}}
teams:
  growth: {budgets: {monthly_usd: 5.00}}
"""
)
WEB = Caller("web-app", "growth", "validation")


def names(text: str) -> list[str]:
    chain = build_policies(parse_config(text, {}).config, MemoryCounters())
    return [policy.name for policy in chain.policies]


def test_an_open_proxy_runs_only_the_request_checks():
    assert names(BASE) == ["responses_model_guard", "image_parameters"]


def test_a_governed_config_runs_every_rule_with_the_counters_last():
    assert names(GOVERNED) == [
        "responses_model_guard",
        "image_parameters",
        "launch_stage",
        "cost_ceiling",
        "rate_limits",
        "budgets",
    ]


def test_check_names_the_chain_and_where_its_counters_live(tmp_path, capsys):
    from proxy.cli import main

    path = tmp_path / "config.yaml"
    path.write_text(GOVERNED)
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert (
        "policies: responses_model_guard, image_parameters, launch_stage, cost_ceiling, rate_limits, budgets "
        "(counters: memory://)"
    ) in out


def test_a_rule_turned_off_in_the_config_does_not_run():
    text = GOVERNED + "policies: {launch_stage: {enabled: false}, budgets: {enabled: false}}\n"
    assert "launch_stage" not in names(text) and "budgets" not in names(text)


async def test_a_refusal_releases_what_earlier_policies_reserved():
    counters = MemoryCounters()
    text = GOVERNED.replace("requests_per_minute: 1}", "requests_per_minute: 9}")
    chain = build_policies(parse_config(text, {}).config, counters)
    # A budgets-like policy that reserves, placed before one that refuses.
    budgets, refusing = chain.policies[-1], chain.policies[2]  # budgets, launch_stage
    chain.policies = (budgets, refusing)
    with pytest.raises(PolicyRefused) as refused:
        await chain.admit(preflight(caller=WEB, image=ImageSettings(quality="high"), estimate_usd="0.08"))
    assert refused.value.policy == "launch_stage"
    day = next(b.allowance for b in budgets.budgets_of(WEB) if b.period == "day")
    assert await counters.used(day) == 0


async def test_an_admitted_request_holds_its_estimate_until_settled():
    counters = MemoryCounters()
    chain = build_policies(parse_config(GOVERNED, {}).config, counters)
    settles = await chain.admit(preflight(caller=WEB, image=ImageSettings(quality="low"), estimate_usd="0.08"))
    budgets = chain.policies[-1]
    day: Allowance = next(b.allowance for b in budgets.budgets_of(WEB) if b.period == "day")
    assert await counters.used(day) == 80_000_000
    for settle in settles:
        await settle(Decimal("0.05"))
    assert await counters.used(day) == 50_000_000


def test_budgets_in_memory_start_from_what_the_ledger_says_was_spent(tmp_path):
    """A restart does not hand a key its daily budget back in full: its first request
    finds no counter, and the counter starts from the ledger's spend today."""
    from starlette.testclient import TestClient

    from proxy.http.app import create_app
    from proxy.ledger import utc_now
    from proxy.ledger.sql import SqlLedger
    from proxy.serving.gateway import Gateway

    from .rows import OPENAI, charged_row

    text = GOVERNED + f"ledger: {{url: 'sqlite:///{tmp_path}/ledger.db', journal_dir: '{tmp_path}/journal'}}\n"
    loaded = parse_config(text, {})
    today = utc_now()
    rows = [
        charged_row("spent-today", today, [(OPENAI, 700_000_000)], key_id="web-app", team="growth"),
        charged_row("spent-before", "2020-01-01T00:00:00.000000Z", [(OPENAI, 900_000_000)], key_id="web-app"),
    ]
    sql = SqlLedger(loaded.config.ledger.url)
    with sql.connect() as connection:
        sql.create_schema(connection)
        sql.upsert(connection, [row.record() for row in rows])

    counters = MemoryCounters()
    app = create_app(lambda: Gateway(loaded, {}, simulated={}, counters=counters), state=counters)
    with TestClient(app) as client:
        budgets = client.app.state.tollgate.gateway.policies.policies[-1]
        assert client.portal.call(budgets.admit, preflight(caller=WEB, estimate_usd="0.25"))  # 0.70 + 0.25 fits
        with pytest.raises(PolicyRefused, match=r"key 'web-app' has \$0.05 left of its daily budget of \$1"):
            client.portal.call(budgets.admit, preflight(caller=WEB, estimate_usd="0.25"))
        allowances = {(b.scope, b.period): b.allowance for b in budgets.budgets_of(WEB)}
        used = {owner: client.portal.call(counters.used, allowance) for owner, allowance in allowances.items()}
    assert used == {("key", "day"): 950_000_000, ("team", "month"): 950_000_000}


async def test_tokens_taken_by_a_request_that_budgets_refuse_are_given_back(store):
    """Issue 11 (5b): only requests that run count against a rate limit."""
    text = BASE + (
        "keys:\n  - {id: web-app, key: sk-web, team: growth, budgets: {daily_usd: 0.01}, "
        "rate_limits: {requests_per_minute: 2}}\n"
    )
    chain = build_policies(parse_config(text, {}).config, store)
    assert [policy.name for policy in chain.policies][-2:] == ["rate_limits", "budgets"]
    web = Caller("web-app", "growth", "production")
    for _ in range(4):
        with pytest.raises(PolicyRefused) as refused:
            await chain.admit(preflight(caller=web, estimate_usd="0.05"))  # over the budget
        assert refused.value.policy == "budgets"
    for _ in range(2):  # the minute's two requests are all still there
        assert len(await chain.admit(preflight(caller=web, estimate_usd="0.001"))) == 1
    with pytest.raises(PolicyRefused) as refused:
        await chain.admit(preflight(caller=web, estimate_usd="0.001"))
    assert refused.value.policy == "rate_limits"


async def test_a_store_that_fails_midway_releases_what_earlier_policies_took():
    """The rate limit took its token, then the budget could not reach the store: the
    request is refused with a 503, and its token is given back."""

    class FailsToReserve(MemoryCounters):
        async def reserve(self, allowances, reservation):
            raise StateUnavailable("ConnectionError")

    counters = FailsToReserve()
    text = BASE + (
        "keys:\n  - {id: web-app, key: sk-web, team: growth, budgets: {daily_usd: 1}, "
        "rate_limits: {requests_per_minute: 1}}\n"
    )
    chain = build_policies(parse_config(text, {}).config, counters)
    web = Caller("web-app", "growth", "production")
    for _ in range(3):
        with pytest.raises(StateUnavailable) as refused:
            await chain.admit(preflight(caller=web, estimate_usd="0.01"))
        assert refused.value.status == 503 and refused.value.code == "state_unavailable"
    bucket = Bucket("rate:key:web-app:requests", capacity=1, cost=1)
    assert await counters.take((bucket,)) is None  # the one token of the minute is there
