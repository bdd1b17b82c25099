"""Prometheus metrics: failures, latency and spend, by route and provider.

Every label value comes from the config (routes, providers, billing owners, price
tables, teams) or from a closed set (surfaces, status classes, failure reasons,
token kinds, standard sizes and qualities) — never from what a client sends — so
the number of series stays bounded. With several workers the values live in
prometheus-client's multiprocess files and /metrics sums them.

The series are made once per app, on the registry it is given (`Metrics`): importing
this module registers nothing and changes no setting of prometheus-client.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from ..config import Config

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
NONE = "none"  # the label value when a request never got as far as a route or provider

# Chat answers in milliseconds, image generations in tens of seconds: one set of buckets for both.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
STANDARD_SIZES = frozenset({"1024x1024", "1024x1536", "1536x1024", "auto"})
QUALITIES = frozenset({"low", "medium", "high", "auto"})
TOKEN_KINDS = ("text_input", "cached_input", "image_input", "text_output", "image_output")
SPEND_LABELS = ["route", "provider", "billing_owner", "price_table", "price_source", "team"]


def process_registry() -> CollectorRegistry:
    """A registry with what prometheus-client's default one holds (the process's CPU,
    memory and file descriptors, Python's version and garbage collector), for one app."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class Metrics:
    """Every series Tollgate exports, made on `registry`: one per app (each test app its own)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        on = {"registry": registry}
        self.requests = Counter(
            "tollgate_requests_total",
            "Client requests, by how they ended.",
            ["route", "provider", "surface", "status_class"],
            **on,
        )
        self.failures = Counter(
            "tollgate_request_failures_total",
            "Client requests that failed, by reason (a closed set) and, for refusals, the policy.",
            ["route", "provider", "reason", "policy"],
            **on,
        )
        self.request_duration = Histogram(
            "tollgate_request_duration_seconds",
            "From the request's arrival to its last byte.",
            ["route", "provider", "surface"],
            buckets=LATENCY_BUCKETS,
            **on,
        )
        self.upstream_duration = Histogram(
            "tollgate_upstream_duration_seconds",
            "Each upstream attempt: from sending to the answer's headers (streams) or body.",
            ["route", "provider"],
            buckets=LATENCY_BUCKETS,
            **on,
        )
        self.overhead = Histogram(
            "tollgate_overhead_seconds",
            "The proxy's own time in a non-streamed request: its duration less upstream time and retry waits.",
            ["route"],
            buckets=OVERHEAD_BUCKETS,
            **on,
        )
        self.spend = Counter(
            "tollgate_spend_usd_total",
            "Cost in USD, charged to each provider's billing owner on its price table "
            "(the ledger has the exact figures).",
            SPEND_LABELS,
            **on,
        )
        self.list_cost = Counter(
            "tollgate_list_cost_usd_total",
            "The vendor's list price (official table) of the usage each charge bills, in USD; where no official "
            "table prices it, the charge itself. Against tollgate_spend_usd_total: a provider's markup or discount.",
            SPEND_LABELS,
            **on,
        )
        self.tokens = Counter("tollgate_tokens_total", "Tokens used, by kind.", ["route", "provider", "kind"], **on)
        self.images = Counter(
            "tollgate_images_total",
            "Images made, by size (standard sizes; others are 'other') and quality.",
            ["route", "provider", "size", "quality"],
            **on,
        )
        self.retries = Counter(
            "tollgate_retries_total", "Upstream attempts repeated on the same provider.", ["route", "provider"], **on
        )
        self.fallbacks = Counter(
            "tollgate_fallbacks_total",
            "Moves to the next provider after one failed.",
            ["route", "from_provider", "to_provider"],
            **on,
        )
        self.in_flight = Gauge(
            "tollgate_in_flight_requests", "Requests being served.", ["route"], multiprocess_mode="livesum", **on
        )
        self.ledger_pending = Gauge(
            "tollgate_ledger_pending_bytes",
            "Journaled ledger rows not yet in the database (bytes).",
            multiprocess_mode="livesum",
            **on,
        )
        self.ledger_rows = Counter("tollgate_ledger_rows_written_total", "Ledger rows written to the database.", **on)
        self.ledger_failures = Counter(
            "tollgate_ledger_write_failures_total",
            "Failed attempts to write ledger rows to the database (retried).",
            **on,
        )
        self.state_reachable = Gauge(
            "tollgate_state_store_reachable",
            "1 while the state store that budgets and rate limits need answers its health check, else 0.",
            multiprocess_mode="livemin",
            **on,
        )
        self.state_pending_writes = Gauge(
            "tollgate_state_pending_writes",
            "Settles and give-backs waiting in the process for the state store to be reachable again.",
            multiprocess_mode="livesum",
            **on,
        )
        self.config_reloads = Counter(
            "tollgate_config_reloads_total",
            "Config reloads each process performed, by result: ok, unchanged (the same text), "
            "failed (the old one serves on).",
            ["result"],
            **on,
        )
        # A series per config version a process has served: one more per reload, never per request.
        self.config_info = Gauge(
            "tollgate_config_info",
            "The loaded config's version (value 1).",
            ["version"],
            multiprocess_mode="livemax",
            **on,
        )
        self.connections_closed = Counter(
            "tollgate_client_connections_closed_total",
            "Client connections closed by the proxy: too slow to send their headers or body (408), or beyond "
            "server.max_connections (503).",
            ["reason"],  # header_timeout, body_timeout, max_connections
            **on,
        )
        self.requests_by_config = Counter(
            "tollgate_requests_by_config_total",
            "Client requests, by the config version they ran under.",
            ["config_version"],
            **on,
        )
        self.budget = Gauge(
            "tollgate_budget_usd",
            "Budgets from the config, in USD per period, by scope (team or key).",
            ["scope", "name", "period"],
            multiprocess_mode="livemax",
            **on,
        )
        self._versions: set[str] = set()
        self._budgets: set[tuple[str, str, str]] = set()
        self._children: dict[tuple[str, tuple[str, ...]], Series] = {}

    def child(self, metric: Counter | Gauge | Histogram, *labels: str) -> Series:
        """The series of `metric` with these label values, made at first use and kept.
        Label values are bounded (see above), and no series is ever removed, so neither
        is this."""
        key = (metric._name, labels)
        try:
            return self._children[key]
        except KeyError:
            found = self._children[key] = Series(metric.labels(*labels))
            return found

    def exposition(self) -> bytes:
        """The text /metrics serves: this app's registry, or every worker's files summed."""
        if os.environ.get(MULTIPROCESS_DIR):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(_WithoutCreated(self.registry))

    def publish_config(self, version: str, config: Config) -> None:
        """The loaded config's version and its budgets, as gauges. What a reload drops is
        set to 0 rather than removed: multiprocess files cannot forget a series."""
        budgets = list(budgets_of(config))
        for old in self._versions - {version}:
            self.config_info.labels(old).set(0)
        self.config_info.labels(version).set(1)
        self._versions.add(version)
        current = {(scope, name, period) for scope, name, period, _ in budgets}
        for old_budget in self._budgets - current:
            self.budget.labels(*old_budget).set(0)
        for scope, name, period, usd in budgets:
            self.budget.labels(scope, name, period).set(usd)
        self._budgets = current


class Series:
    """One labelled series, updated as prometheus-client's own child updates it (the
    same values, under the same lock, in memory or in the multiprocess files) less
    what its public methods repeat at every call: the check that the child has its
    labels, which it has, and that an amount is not negative, which none here is
    (a gauge goes down by `inc(-1)`). A chat request makes eleven updates, four Python
    calls each through those methods, one here (a histogram's, three).

    Reads prometheus-client's internals (`_value`, `_sum`, `_buckets`, `_upper_bounds`),
    as 0.26 has them; tests/telemetry/test_metrics.py compares the exposition with the
    public methods', and fails on a release that moves them."""

    __slots__ = ("inc", "observe")

    def __init__(self, child: Counter | Gauge | Histogram) -> None:
        if isinstance(child, Histogram):
            bounds, add = child._upper_bounds, child._sum.inc
            buckets = [bucket.inc for bucket in child._buckets]

            def observe(amount: float) -> None:
                add(amount)
                buckets[bisect_left(bounds, amount)](1)  # the first bucket whose bound is >= amount (+Inf last)

            self.observe = observe
        else:
            self.inc: Callable[[float], None] = child._value.inc


class _WithoutCreated:
    """A registry as scraped, less the `_created` series of each counter and histogram:
    they double what is scraped and are never queried."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        for family in self._registry.collect():
            family.samples = [sample for sample in family.samples if not sample.name.endswith("_created")]
            yield family


def size_label(size: str | None) -> str:
    return size if size in STANDARD_SIZES else ("other" if size else NONE)


def quality_label(quality: str | None) -> str:
    return quality if quality in QUALITIES else ("other" if quality else NONE)


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def budgets_of(config: Config) -> Iterator[tuple[str, str, str, float]]:
    """(scope, name, period, USD) for every budget in the config."""
    owners = [("key", key.id, key.budgets) for key in config.keys or ()]
    owners += [("team", name, team.budgets) for name, team in config.teams.items()]
    for scope, name, budgets in owners:
        if budgets is not None:
            for period, usd in (("day", budgets.daily_usd), ("month", budgets.monthly_usd)):
                if usd is not None:
                    yield scope, name, period, float(usd)
