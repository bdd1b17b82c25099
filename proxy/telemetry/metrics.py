"""Prometheus metrics: failures, latency and spend, by route and provider.

Every label value comes from the config (routes, providers, billing owners, price
tables, teams) or from a closed set (surfaces, status classes, failure reasons,
token kinds, standard sizes and qualities) — never from what a client sends — so
the number of series stays bounded. With several workers the values live in
prometheus-client's multiprocess files and /metrics sums them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from ..config import Config

disable_created_metrics()  # a `_created` series per counter doubles what is scraped and is never queried

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
NONE = "none"  # the label value when a request never got as far as a route or provider

# Chat answers in milliseconds, image generations in tens of seconds: one set of buckets for both.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
STANDARD_SIZES = frozenset({"1024x1024", "1024x1536", "1536x1024", "auto"})
QUALITIES = frozenset({"low", "medium", "high", "auto"})
TOKEN_KINDS = ("text_input", "cached_input", "image_input", "text_output", "image_output")

REQUESTS = Counter(
    "tollgate_requests_total", "Client requests, by how they ended.", ["route", "provider", "surface", "status_class"]
)
FAILURES = Counter(
    "tollgate_request_failures_total",
    "Client requests that failed, by reason (a closed set) and, for refusals, the policy.",
    ["route", "provider", "reason", "policy"],
)
REQUEST_DURATION = Histogram(
    "tollgate_request_duration_seconds",
    "From the request's arrival to its last byte.",
    ["route", "provider", "surface"],
    buckets=LATENCY_BUCKETS,
)
UPSTREAM_DURATION = Histogram(
    "tollgate_upstream_duration_seconds",
    "Each upstream attempt: from sending to the answer's headers (streams) or body.",
    ["route", "provider"],
    buckets=LATENCY_BUCKETS,
)
OVERHEAD = Histogram(
    "tollgate_overhead_seconds",
    "The proxy's own time in a non-streamed request: its duration less upstream time and retry waits.",
    ["route"],
    buckets=OVERHEAD_BUCKETS,
)
SPEND = Counter(
    "tollgate_spend_usd_total",
    "Cost in USD, charged to each provider's billing owner on its price table (the ledger has the exact figures).",
    ["route", "provider", "billing_owner", "price_table", "price_source", "team"],
)
LIST_COST = Counter(
    "tollgate_list_cost_usd_total",
    "The vendor's list price (official table) of the usage each charge bills, in USD; where no official table "
    "prices it, the charge itself. Against tollgate_spend_usd_total: a provider's markup or discount.",
    ["route", "provider", "billing_owner", "price_table", "price_source", "team"],
)
TOKENS = Counter("tollgate_tokens_total", "Tokens used, by kind.", ["route", "provider", "kind"])
IMAGES = Counter(
    "tollgate_images_total",
    "Images made, by size (standard sizes; others are 'other') and quality.",
    ["route", "provider", "size", "quality"],
)
RETRIES = Counter("tollgate_retries_total", "Upstream attempts repeated on the same provider.", ["route", "provider"])
FALLBACKS = Counter(
    "tollgate_fallbacks_total",
    "Moves to the next provider after one failed.",
    ["route", "from_provider", "to_provider"],
)
IN_FLIGHT = Gauge("tollgate_in_flight_requests", "Requests being served.", ["route"], multiprocess_mode="livesum")
LEDGER_PENDING = Gauge(
    "tollgate_ledger_pending_bytes",
    "Journaled ledger rows not yet in the database (bytes).",
    multiprocess_mode="livesum",
)
LEDGER_ROWS = Counter("tollgate_ledger_rows_written_total", "Ledger rows written to the database.")
LEDGER_FAILURES = Counter(
    "tollgate_ledger_write_failures_total", "Failed attempts to write ledger rows to the database (retried)."
)
STATE_REACHABLE = Gauge(
    "tollgate_state_store_reachable",
    "1 while the state store that budgets and rate limits need answers its health check, else 0.",
    multiprocess_mode="livemin",
)
STATE_PENDING_WRITES = Gauge(
    "tollgate_state_pending_writes",
    "Settles and give-backs waiting in the process for the state store to be reachable again.",
    multiprocess_mode="livesum",
)
CONFIG_RELOADS = Counter(
    "tollgate_config_reloads_total",
    "Config reloads each process performed, by result: ok, unchanged (the same text), failed (the old one serves on).",
    ["result"],
)
CONFIG_INFO = Gauge(
    "tollgate_config_info", "The loaded config's version (value 1).", ["version"], multiprocess_mode="livemax"
)
# A series per config version a process has served: one more per reload, never per request.
CONNECTIONS_CLOSED = Counter(
    "tollgate_client_connections_closed_total",
    "Client connections closed by the proxy: too slow to send their headers or body (408), or beyond "
    "server.max_connections (503).",
    ["reason"],  # header_timeout, body_timeout, max_connections
)
REQUESTS_BY_CONFIG = Counter(
    "tollgate_requests_by_config_total", "Client requests, by the config version they ran under.", ["config_version"]
)
BUDGET = Gauge(
    "tollgate_budget_usd",
    "Budgets from the config, in USD per period, by scope (team or key).",
    ["scope", "name", "period"],
    multiprocess_mode="livemax",
)


def size_label(size: str | None) -> str:
    return size if size in STANDARD_SIZES else ("other" if size else NONE)


def quality_label(quality: str | None) -> str:
    return quality if quality in QUALITIES else ("other" if quality else NONE)


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def exposition() -> bytes:
    """The text /metrics serves: this process's registry, or every worker's files summed."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY)


_published: dict[str, set] = {"versions": set(), "budgets": set()}


def publish_config(version: str, config: Config) -> None:
    """The loaded config's version and its budgets, as gauges. What a reload drops is
    set to 0 rather than removed: multiprocess files cannot forget a series."""
    budgets = list(budgets_of(config))
    for old in _published["versions"] - {version}:
        CONFIG_INFO.labels(old).set(0)
    CONFIG_INFO.labels(version).set(1)
    _published["versions"].add(version)
    current = {(scope, name, period) for scope, name, period, _ in budgets}
    for old in _published["budgets"] - current:
        BUDGET.labels(*old).set(0)
    for scope, name, period, usd in budgets:
        BUDGET.labels(scope, name, period).set(usd)
    _published["budgets"] = current


def budgets_of(config: Config) -> Iterator[tuple[str, str, str, float]]:
    """(scope, name, period, USD) for every budget in the config."""
    owners = [("key", key.id, key.budgets) for key in config.keys or ()]
    owners += [("team", name, team.budgets) for name, team in config.teams.items()]
    for scope, name, budgets in owners:
        if budgets is not None:
            for period, usd in (("day", budgets.daily_usd), ("month", budgets.monthly_usd)):
                if usd is not None:
                    yield scope, name, period, float(usd)
