"""A finished request becomes metrics and one access-log line, both read from its
ledger row; label values stay within the config and closed sets."""

from __future__ import annotations

import logging

import orjson
from prometheus_client import CollectorRegistry

from providers.errors import FailureReason
from proxy.ledger import Charge, LedgerRow, utc_now
from proxy.serving.observation import log_access, record_metrics
from proxy.telemetry.logs import JsonFormatter
from proxy.telemetry.metrics import Metrics

METRICS = Metrics(CollectorRegistry())


def value(name: str, **labels: str) -> float:
    return METRICS.registry.get_sample_value(name, labels) or 0.0


def row(**fields) -> LedgerRow:
    base = dict(
        request_id="req_obs",
        created_at=utc_now(),
        surface="images.generate",
        status="ok",
        http_status=200,
        route="obs-route",
        provider="acme",
        billing_owner="acme/acct",
        price_table="acme-t",
        price_source="provider",
        team="growth",
        latency_ms=1500.0,
        images=2,
        size="2000x1000",
        quality="high",
        output_image_tokens=100,
        input_text_tokens=7,
        cost_nanousd=500_000_000,
    )
    made = LedgerRow(**{**base, **fields})
    made.attempts = [
        {"provider": "openai", "model": "m", "status": 503, "latency_ms": 200.0, "error": "upstream_5xx"},
        {"provider": "openai", "model": "m", "status": 503, "latency_ms": 300.0, "error": "upstream_5xx"},
        {"provider": "acme", "model": "m", "status": 200, "latency_ms": 900.0, "error": None},
    ]
    made.charges = [
        Charge("acme", "acme/acct", "acme-t", "provider", 400_000_000, "usage", 350_000_000, "openai-official"),
        Charge("openai", "openai/org", "openai-official", "official", 100_000_000, "estimate"),  # no list price
    ]
    return made


def test_a_row_becomes_its_series():
    spend = {"route": "obs-route", "team": "growth"}
    before = {
        "requests": value(
            "tollgate_requests_total", route="obs-route", provider="acme", surface="images.generate", status_class="2xx"
        ),
        "acme": value(
            "tollgate_spend_usd_total",
            provider="acme",
            billing_owner="acme/acct",
            price_table="acme-t",
            price_source="provider",
            **spend,
        ),
        "openai": value(
            "tollgate_spend_usd_total",
            provider="openai",
            billing_owner="openai/org",
            price_table="openai-official",
            price_source="official",
            **spend,
        ),
        "acme_list": value(
            "tollgate_list_cost_usd_total",
            provider="acme",
            billing_owner="acme/acct",
            price_table="acme-t",
            price_source="provider",
            **spend,
        ),
        "openai_list": value(
            "tollgate_list_cost_usd_total",
            provider="openai",
            billing_owner="openai/org",
            price_table="openai-official",
            price_source="official",
            **spend,
        ),
        "retries": value("tollgate_retries_total", route="obs-route", provider="openai"),
        "fallbacks": value("tollgate_fallbacks_total", route="obs-route", from_provider="openai", to_provider="acme"),
        "images": value("tollgate_images_total", route="obs-route", provider="acme", size="other", quality="high"),
        "overhead": value("tollgate_overhead_seconds_sum", route="obs-route"),
    }
    record_metrics(METRICS, row(), reason=None, policy=None, waited_s=0.05, streamed=False)
    assert (
        value(
            "tollgate_requests_total", route="obs-route", provider="acme", surface="images.generate", status_class="2xx"
        )
        == before["requests"] + 1
    )
    # each charge under its own provider and table
    assert (
        value(
            "tollgate_spend_usd_total",
            provider="acme",
            billing_owner="acme/acct",
            price_table="acme-t",
            price_source="provider",
            **spend,
        )
        == before["acme"] + 0.4
    )
    assert (
        value(
            "tollgate_spend_usd_total",
            provider="openai",
            billing_owner="openai/org",
            price_table="openai-official",
            price_source="official",
            **spend,
        )
        == before["openai"] + 0.1
    )
    # the list price of each charge, with the spend counter's labels: acme marks its 0.35 list up to 0.40;
    # a charge without a list price counts at its own cost, so the difference is markup and nothing else
    assert (
        value(
            "tollgate_list_cost_usd_total",
            provider="acme",
            billing_owner="acme/acct",
            price_table="acme-t",
            price_source="provider",
            **spend,
        )
        == before["acme_list"] + 0.35
    )
    assert (
        value(
            "tollgate_list_cost_usd_total",
            provider="openai",
            billing_owner="openai/org",
            price_table="openai-official",
            price_source="official",
            **spend,
        )
        == before["openai_list"] + 0.1
    )
    assert value("tollgate_retries_total", route="obs-route", provider="openai") == before["retries"] + 1
    assert (
        value("tollgate_fallbacks_total", route="obs-route", from_provider="openai", to_provider="acme")
        == before["fallbacks"] + 1
    )
    # a size the client chose freely is not a label value of its own
    assert (
        value("tollgate_images_total", route="obs-route", provider="acme", size="other", quality="high")
        == before["images"] + 2
    )
    # 1.5 s in all, 1.4 s upstream, 0.05 s waiting between tries: 0.05 s of the proxy's own
    assert abs(value("tollgate_overhead_seconds_sum", route="obs-route") - before["overhead"] - 0.05) < 1e-9


def test_a_failure_counts_its_reason_and_a_request_without_a_route_is_labelled_none():
    before = value("tollgate_request_failures_total", route="none", provider="none", reason="auth", policy="")
    failed = LedgerRow(
        request_id="req_401",
        created_at=utc_now(),
        surface="chat.completions",
        status="error",
        http_status=401,
        latency_ms=1.0,
    )
    record_metrics(METRICS, failed, reason=FailureReason.AUTH, policy=None, waited_s=0, streamed=False)
    assert (
        value("tollgate_request_failures_total", route="none", provider="none", reason="auth", policy="") == before + 1
    )


def test_the_access_log_line_carries_the_request_and_no_secret(caplog):
    handler_output = []

    class Capture(logging.Handler):
        def emit(self, record):
            handler_output.append(JsonFormatter().format(record))

    logger = logging.getLogger("tollgate.access")
    capture = Capture()
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    try:
        log_access(row(key_id="web-app"), reason=None)
    finally:
        logger.removeHandler(capture)
    (line,) = handler_output
    entry = orjson.loads(line)
    assert entry["request_id"] == "req_obs" and entry["route"] == "obs-route" and entry["provider"] == "acme"
    assert entry["status"] == 200 and entry["latency_ms"] == 1500.0 and entry["cost_usd"] == "0.5"
    assert entry["price_table"] == "acme-t" and entry["key_id"] == "web-app"
    assert "sk-" not in line and "authorization" not in line.lower()
