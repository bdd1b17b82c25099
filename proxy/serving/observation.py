"""What one finished request tells the operators: its metrics and its access-log
line, both taken from its ledger row, so the three never disagree."""

from __future__ import annotations

import logging

from providers.errors import FailureReason

from ..ledger import LedgerRow, from_nano
from ..telemetry.logs import json_writer_for
from ..telemetry.metrics import NONE, Metrics, quality_label, size_label, status_class

access_log = logging.getLogger("tollgate.access")


def record_metrics(
    metrics: Metrics,
    row: LedgerRow,
    *,
    reason: FailureReason | None,
    policy: str | None,
    waited_s: float,
    streamed: bool,
) -> None:
    route = row.route or NONE
    provider = row.provider or NONE
    duration_s = (row.latency_ms or 0) / 1000
    metrics.child(metrics.requests, route, provider, row.surface, status_class(row.http_status or 0)).inc(1)
    metrics.child(metrics.request_duration, route, provider, row.surface).observe(duration_s)
    metrics.child(metrics.requests_by_config, row.config_version or NONE).inc(1)
    if reason is not None:
        metrics.child(metrics.failures, route, provider, reason.value, policy or "").inc(1)

    upstream_s = 0.0
    previous = None
    for attempt in row.attempts:
        seconds = attempt["latency_ms"] / 1000
        upstream_s += seconds
        metrics.child(metrics.upstream_duration, route, attempt["provider"]).observe(seconds)
        if previous == attempt["provider"]:
            metrics.child(metrics.retries, route, attempt["provider"]).inc(1)
        elif previous is not None:
            metrics.child(metrics.fallbacks, route, previous, attempt["provider"]).inc(1)
        previous = attempt["provider"]
    if row.attempts and not streamed:
        metrics.child(metrics.overhead, route).observe(max(duration_s - upstream_s - waited_s, 0.0))

    team = row.team or ""
    for charge in row.charges:
        table, source = charge.price_table or "", charge.price_source or ""
        labels = (route, charge.provider, charge.billing_owner, table, source, team)
        # n / 1e9 is the float nearest the exact dollars (n < 2**53), as float(Decimal) is; the ledger keeps them exact.
        amount, listed = charge.cost_nanousd, charge.listed_nanousd
        if amount:
            metrics.child(metrics.spend, *labels).inc(amount / 1e9)
        if listed:
            metrics.child(metrics.list_cost, *labels).inc(listed / 1e9)
    tokens = (
        ("text_input", row.input_text_tokens),
        ("cached_input", row.cached_input_tokens),
        ("image_input", row.input_image_tokens),
        ("text_output", row.output_text_tokens),
        ("image_output", row.output_image_tokens),
    )
    for kind, count in tokens:
        if count:
            metrics.child(metrics.tokens, route, provider, kind).inc(count)
    if row.images:
        metrics.child(metrics.images, route, provider, size_label(row.size), quality_label(row.quality)).inc(row.images)


def log_access(row: LedgerRow, *, reason: FailureReason | None) -> None:
    """One JSON line per request (with `server.log.format: json`); no secret is in a row."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    # Made and handled directly: `info` would walk the stack for a caller no format shows.
    fields = {
        "request_id": row.request_id,
        "route": row.route,
        "provider": row.provider,
        "surface": row.surface,
        "status": row.http_status,
        "outcome": row.status,
        "reason": reason.value if reason else None,
        "latency_ms": row.latency_ms,
        "attempts": len(row.attempts),
        "cost_usd": format(from_nano(row.cost_nanousd), "f") if row.cost_nanousd is not None else None,
        "cost_basis": row.cost_basis,
        "price_table": row.price_table,
        "price_source": row.price_source,
        "billing_owner": row.billing_owner,
        "key_id": row.key_id,
        "team": row.team,
    }
    if (writer := json_writer_for(access_log, logging.INFO)) is not None:
        writer.write_json(logging.INFO, access_log.name, "request", fields)
        return
    access_log.handle(access_log.makeRecord(access_log.name, logging.INFO, "", 0, "request", (), None, extra=fields))
