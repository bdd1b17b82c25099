"""The dashboards and alert rules against real software: a real Tollgate serves traffic
of every kind (each surface, image sizes and qualities, retries, fallbacks, failures of
several reasons, two teams with budgets), a real Prometheus scrapes it every second
with the rule file loaded, and every panel query, variable query and alert rule must
be valid PromQL that finds series. A query whose metric or label is renamed fails here."""

from __future__ import annotations

import io
import math
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

import httpx
import openai
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from ..dashboards import (
    DASHBOARDS,
    FALLBACK,
    GRAFANA,
    LABEL_VALUES,
    RULE_FILE,
    concrete,
    dashboard_queries,
    load_dashboard,
    panels,
    rule_groups,
    rule_queries,
    selectors,
    variable_query,
    variables,
    without_thresholds,
)
from .configs import ConfigFile, acme_on, acme_price_table, key, openai_on, route, target
from .harness import Proxy, marker
from .prometheus import Prometheus, QueryError, poll, start_prometheus

GROWTH_KEY = "sk-growth-team-key"
RESEARCH_KEY = "sk-research-team-key"
# Metrics that cannot have a series in this test, each with why; only the part of an
# expression before its `or on() vector(0)` may rely on them, the whole must still answer.
NO_SERIES_HERE = {
    "tollgate_config_reloads_total": "counted per result when a reload happens; the proxy has no reload yet",
}


def config(simulator_url: str) -> ConfigFile:
    """Three price sources: openai on the official table, acme on its own, and gpt-5.4-mini and
    the embeddings model, which neither table lists, on LiteLLM's catalog."""
    acme_images = {
        "low": {"1024x1024": Decimal("0.009")},
        "medium": {"1024x1536": Decimal("0.05")},
        "high": {"1536x1024": Decimal("0.2")},
    }
    return ConfigFile(
        price_tables={"acme-2026-11": acme_price_table(**{"gpt-image-2": {"image": acme_images}})},
        providers={
            "openai": openai_on(simulator_url, api_key="sk-up-openai"),
            "acme": acme_on(simulator_url, api_key="sk-up-acme", price_table="acme-2026-11"),
        },
        routes={
            "gpt-image-2": route(target("openai", "gpt-image-2"), fallbacks=[target("acme", "gpt-image-2")], retries=1),
            "acme-image": route(target("acme", "gpt-image-2"), retries=1),
            "gpt-5.4-mini": route(target("openai", "gpt-5.4-mini"), retries=1),
            "text-embedding-3-small": route(target("openai", "text-embedding-3-small"), retries=1),
        },
        keys=[
            key("web-app", GROWTH_KEY, "growth"),
            key("lab-notebook", RESEARCH_KEY, "research", budgets={"daily_usd": 5}),
        ],
        teams={
            "growth": {"budgets": {"daily_usd": 50, "monthly_usd": 1000}},
            "research": {"budgets": {"daily_usd": 20, "monthly_usd": 400}},
        },
    )


def png(size: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), "teal").save(buffer, format="PNG")
    return buffer.getvalue()


def every_kind_of_request(proxy: Proxy) -> list[Callable[[], object]]:
    """One round of traffic: each surface, sizes and qualities on two price tables, and the
    simulator's faults for a retry, a fallback and failures of several reasons."""
    growth, research = proxy.client(api_key=GROWTH_KEY), proxy.client(api_key=RESEARCH_KEY)
    image, acme = growth.images.with_raw_response.generate, research.images.with_raw_response.generate
    chat = research.chat.completions.with_raw_response.create
    embed = growth.embeddings.with_raw_response.create
    slow = research.with_options(default_headers={"x-tollgate-timeout-s": "0.2"}).images.with_raw_response.generate
    stranger = proxy.client(api_key="sk-not-a-key").chat.completions.with_raw_response.create

    def say(text: str) -> list[dict]:
        return [{"role": "user", "content": text}]

    return [
        lambda: image(model="gpt-image-2", prompt="a lighthouse", size="1024x1024", quality="low"),
        lambda: image(model="gpt-image-2", prompt="a harbour", size="1024x1536", quality="medium"),
        lambda: image(model="gpt-image-2", prompt="a cliff", size="1536x1024", quality="high"),
        lambda: acme(model="acme-image", prompt="a boat", size="1024x1024", quality="low"),
        lambda: acme(model="acme-image", prompt="a gull", size="1024x1536", quality="medium"),
        lambda: acme(model="acme-image", prompt="a storm", size="1536x1024", quality="high"),
        lambda: image(model="gpt-image-2", prompt="a kite", quality="low", stream=True, partial_images=1),
        lambda: growth.images.with_raw_response.edit(
            model="gpt-image-2", image=("in.png", png(1024), "image/png"), prompt="paint it red", quality="low"
        ),
        lambda: growth.responses.with_raw_response.create(model="gpt-5.4-mini", input="hello"),
        lambda: chat(model="gpt-5.4-mini", messages=say("hi there")),
        lambda: chat(model="gpt-5.4-mini", messages=say("go on"), stream=True, stream_options={"include_usage": True}),
        lambda: embed(model="text-embedding-3-small", input="words"),
        # a fallback (openai twice, then acme) and a retry (openai twice)
        lambda: image(model="gpt-image-2", prompt=f"a fox {marker('unavailable', upstream='openai')}", quality="low"),
        lambda: chat(model="gpt-5.4-mini", messages=say(f"hey {marker('server_error', times=1, upstream='openai')}")),
        # failures: invalid_request, timeout, upstream_5xx, rate_limited, bad_upstream_response, auth,
        # and a route that does not exist
        lambda: image(model="gpt-image-2", prompt=f"nope {marker('moderation')}", quality="low"),
        lambda: slow(model="gpt-image-2", prompt=f"slow {marker('timeout', delay=3)}", quality="low"),
        lambda: embed(model="text-embedding-3-small", input=f"more {marker('server_error', upstream='openai')}"),
        lambda: embed(model="text-embedding-3-small", input=f"busy {marker('rate_limit', retry_after=0.05)}"),
        lambda: embed(model="text-embedding-3-small", input=f"garbled {marker('malformed')}"),
        lambda: stranger(model="gpt-5.4-mini", messages=say("let me in")),
        lambda: chat(model="no-such-model", messages=say("anyone?")),
    ]


def send(request: Callable[[], object]) -> str:
    """Send one request, read its answer to the end; its request id, whatever the outcome."""
    try:
        raw = request()
        answer = raw.parse()
        if isinstance(answer, openai.Stream):
            list(answer)
        return raw.headers["x-request-id"]
    except openai.APIStatusError as error:
        return error.response.headers["x-request-id"]


def scraped_total(proxy: Proxy, name: str) -> float:
    """A metric's value summed over its series, as /metrics shows it now."""
    text = httpx.get(f"{proxy.url}/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def wait_until_scraped(prometheus: Prometheus, proxy: Proxy) -> None:
    """Until Prometheus has a scrape taken after every request so far."""
    total = scraped_total(proxy, "tollgate_requests_total")

    def caught_up() -> bool:
        found = prometheus.query("sum(tollgate_requests_total)")
        return bool(found) and float(found[0]["value"][1]) == total

    poll(caught_up, what=f"Prometheus sees all {total:.0f} requests")


@dataclass
class Observed:
    proxy: Proxy
    prometheus: Prometheus
    request_ids: list[str]


@pytest.fixture(scope="module")
def observed(simulator, start_proxy, tmp_path_factory) -> Iterator[Observed]:
    proxy = start_proxy(config(simulator.url))
    prometheus = start_prometheus(tmp_path_factory.mktemp("prometheus"), urlsplit(proxy.url).netloc, [RULE_FILE])
    try:
        request_ids: list[str] = []
        with ThreadPoolExecutor(8) as pool:
            # Two rounds: the second moves counters that Prometheus has already seen, so rates are not 0.
            for _ in range(2):
                request_ids += pool.map(send, every_kind_of_request(proxy))
                wait_until_scraped(prometheus, proxy)
        yield Observed(proxy, prometheus, request_ids)
    finally:
        prometheus.stop()


def evaluate(prometheus: Prometheus, expr: str) -> str | None:
    """Why a query fails (invalid, or no series), or None when it answers."""
    try:
        return None if prometheus.query(expr) else "no series"
    except QueryError as error:
        return str(error)


def failures(prometheus: Prometheus, queries: dict[str, str]) -> list[str]:
    return [f"{where}: {why}\n    {expr}" for where, expr in queries.items() if (why := evaluate(prometheus, expr))]


def test_every_dashboard_query_is_valid_and_finds_series(observed):
    queries = {query.where: concrete(query.expr) for query in dashboard_queries()}
    # Where a query falls back to 0, what it falls back from must find series too.
    queries |= {
        f"{where} (before its fallback)": expr.removesuffix(FALLBACK)
        for where, expr in queries.items()
        if expr.endswith(FALLBACK) and not any(name in expr for name in NO_SERIES_HERE)
    }
    assert len(queries) > 40
    failed = failures(observed.prometheus, queries)
    assert not failed, "\n".join(failed)


def test_every_metric_selector_in_the_dashboards_and_rules_finds_series(observed):
    """Each `tollgate_…{…}` on its own: a renamed metric or label value is caught even where a
    query would still answer (`or`, `0 *`)."""
    found = {
        selector: query.where
        for query in dashboard_queries() + rule_queries()
        for selector in selectors(concrete(query.expr))
        if selector.split("{")[0] not in NO_SERIES_HERE
    }
    assert len({selector.split("{")[0] for selector in found}) >= 15
    failed = failures(observed.prometheus, {f"{where}: {selector}": selector for selector, where in found.items()})
    assert not failed, "\n".join(failed)


def test_every_alert_rule_is_valid_and_watches_series(observed):
    """Each alert's expression with its thresholds made `bool`: the series it watches, 1 where
    it would fire. The expression as written is evaluated too, for its validity."""
    queries = {query.where: without_thresholds(query.expr) for query in rule_queries()}
    failed = failures(observed.prometheus, queries)
    for query in rule_queries():
        try:
            observed.prometheus.query(query.expr)
        except QueryError as error:
            failed.append(f"{query.where}: {error}")
    assert not failed, "\n".join(failed)


def test_prometheus_loaded_every_rule_group_and_evaluates_it_without_error(observed):
    expected = {group["name"]: len(group["rules"]) for group in rule_groups()}

    def evaluated() -> list[dict] | None:
        groups = observed.prometheus.rule_groups()
        rules = [rule for group in groups for rule in group["rules"]]
        # A rule not evaluated yet says it was last evaluated at the zero time, 0001-01-01.
        return groups if all(not rule["lastEvaluation"].startswith("0001") for rule in rules) else None

    groups = poll(evaluated, what="every rule evaluated")
    assert {group["name"]: len(group["rules"]) for group in groups} == expected
    unhealthy = [(rule["name"], rule["health"], rule.get("lastError")) for g in groups for rule in g["rules"]]
    assert all(health == "ok" and not error for _, health, error in unhealthy), unhealthy


def test_the_failure_rate_alert_goes_pending_on_a_failing_route_only(observed):
    """Most embeddings requests fail upstream (5xx, 429, a garbled body): the alert's condition holds
    at once (it fires after its `for:`). One in six of gpt-image-2's requests on openai is refused
    for moderation, the client's own failure: that route stays quiet."""

    def pending() -> set[tuple[str, str]]:
        alerts = observed.prometheus.api("alerts")["alerts"]
        return {
            (alert["labels"]["route"], alert["labels"]["provider"])
            for alert in alerts
            if alert["labels"]["alertname"] == "TollgateHighFailureRate" and alert["state"] == "pending"
        }

    poll(lambda: ("text-embedding-3-small", "openai") in pending(), what="TollgateHighFailureRate pending")
    assert ("gpt-image-2", "openai") not in pending()


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_the_variables_find_the_configs_routes_providers_and_billing_owners(observed, path):
    expected = {
        "route": {"gpt-image-2", "acme-image", "gpt-5.4-mini", "text-embedding-3-small"},
        "provider": {"openai", "acme"},
        "billing_owner": {"openai/org-test", "acme/acct-7"},
    }
    for name, variable in variables(load_dashboard(path)).items():
        selector, label = LABEL_VALUES.fullmatch(variable_query(variable)).groups()
        values = set(observed.prometheus.label_values(label, concrete(selector)))
        assert expected[name] <= values, (name, values)


def test_promtool_accepts_the_rule_file():
    result = subprocess.run(["promtool", "check", "rules", str(RULE_FILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rule_queries())} rules found" in result.stdout


def ledger_usd(observed: Observed, total: str) -> float:
    """A total over the ledger once every request's row is finished and written (nano-dollars → USD)."""
    ids = observed.request_ids
    marks = ",".join("?" * len(ids))
    with closing(sqlite3.connect(observed.proxy.config_path.parent / "ledger.db")) as database:

        def written() -> bool:
            finished = f"SELECT count(*) FROM ledger WHERE status <> 'started' AND request_id IN ({marks})"
            return database.execute(finished, ids).fetchone()[0] == len(ids)

        poll(written, what="every request's row finished in the ledger")
        (nano,) = database.execute(total).fetchone()
    return float(Decimal(nano) / 10**9)


def test_the_spend_counter_adds_up_to_the_ledgers_total(observed):
    """Every request's row finished and written, the counter (floats) equals the ledger (nano-dollars)."""
    ledger = ledger_usd(observed, "SELECT SUM(cost_nanousd) FROM ledger")
    tolerance = {"rel_tol": 1e-9, "abs_tol": 1e-12 * len(observed.request_ids)}
    counted = scraped_total(observed.proxy, "tollgate_spend_usd_total")
    assert ledger > 0 and math.isclose(counted, ledger, **tolerance)
    (in_prometheus,) = observed.prometheus.query("sum(tollgate_spend_usd_total)")
    assert math.isclose(float(in_prometheus["value"][1]), ledger, **tolerance)


def test_the_list_price_panel_shows_acmes_markup_and_none_on_openais_own_table(observed):
    """acme bills gpt-image-2 per image above what OpenAI's list price makes of the same tokens;
    openai's traffic is on the official table or, for models no official table lists, counted at
    its billed cost on both sides: no markup."""
    dashboard = load_dashboard(GRAFANA / "dashboards" / "tollgate-finance.json")
    (panel,) = [panel for panel in panels(dashboard) if panel["title"].lower().startswith("list price vs billed")]
    billed, listed, markup = (
        {found["metric"]["provider"]: float(found["value"][1]) for found in observed.prometheus.query(concrete(expr))}
        for expr in (target["expr"] for target in panel["targets"])
    )
    assert set(billed) == set(listed) == set(markup) == {"openai", "acme"}
    # (billed and listed are two queries a moment apart, and `increase` extrapolates to the moment:
    # only the markup, computed in one query, compares them exactly)
    assert markup["openai"] == 0 and billed["openai"] > 0 and listed["openai"] > 0
    assert markup["acme"] > 10 and billed["acme"] > 0 and listed["acme"] > 0


def test_the_list_cost_counter_adds_up_to_the_ledgers_list_prices(observed):
    listed = ledger_usd(observed, "SELECT SUM(COALESCE(list_cost_nanousd, cost_nanousd)) FROM ledger_charges")
    counted = scraped_total(observed.proxy, "tollgate_list_cost_usd_total")
    assert listed > 0 and math.isclose(counted, listed, rel_tol=1e-9, abs_tol=1e-12 * len(observed.request_ids))
