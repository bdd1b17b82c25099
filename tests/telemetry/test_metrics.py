"""Metrics are made once per app, on the registry it is given: importing the module
registers nothing and changes no setting of prometheus-client, two apps in one
process count apart, and /metrics serves what the default registry would have,
less the `_created` series nobody queries."""

from __future__ import annotations

import subprocess
import sys

from prometheus_client import CollectorRegistry

from proxy.telemetry.metrics import Metrics, process_registry


def test_importing_the_proxy_registers_no_series_and_changes_no_setting():
    probe = (
        "import prometheus_client.metrics as settings\n"
        "from prometheus_client import REGISTRY\n"
        "import proxy.runtime.server, proxy.telemetry.metrics\n"
        "names = [m.name for m in REGISTRY.collect() if m.name.startswith('tollgate')]\n"
        "print(settings._use_created, names)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "True []"


def test_two_apps_count_apart():
    first, second = Metrics(CollectorRegistry()), Metrics(CollectorRegistry())
    first.requests.labels("r", "p", "chat", "2xx").inc()
    labels = {"route": "r", "provider": "p", "surface": "chat", "status_class": "2xx"}
    assert first.registry.get_sample_value("tollgate_requests_total", labels) == 1
    assert second.registry.get_sample_value("tollgate_requests_total", labels) is None  # no such series there


def test_the_exposition_has_the_process_series_and_no_created_series():
    metrics = Metrics(process_registry())
    metrics.requests.labels("r", "p", "chat", "2xx").inc()
    metrics.request_duration.labels("r", "p", "chat").observe(0.2)
    text = metrics.exposition().decode()
    assert 'tollgate_requests_total{provider="p",route="r",status_class="2xx",surface="chat"} 1.0' in text
    assert "tollgate_request_duration_seconds_count" in text
    assert "python_info" in text and "process_resident_memory_bytes" in text
    assert "_created" not in text


def _updated(through_series: bool) -> bytes:
    """One set of updates, made through `Metrics.child` or through prometheus-client's
    public API, as exposed."""
    metrics = Metrics(CollectorRegistry())
    counter = ("r", "p", "chat", "2xx")
    if through_series:
        metrics.child(metrics.requests, *counter).inc(1)
        metrics.child(metrics.requests, *counter).inc(2)
        metrics.child(metrics.in_flight, "r").inc(1)
        metrics.child(metrics.in_flight, "r").inc(1)
        metrics.child(metrics.in_flight, "r").inc(-1)
        for seconds in (0.0, 0.005, 0.0051, 1, 599.9, 600, 601, 1e9):  # on, between and past the bounds
            metrics.child(metrics.request_duration, "r", "p", "chat").observe(seconds)
    else:
        metrics.requests.labels(*counter).inc()
        metrics.requests.labels(*counter).inc(2)
        metrics.in_flight.labels("r").inc()
        metrics.in_flight.labels("r").inc()
        metrics.in_flight.labels("r").dec()
        for seconds in (0.0, 0.005, 0.0051, 1, 599.9, 600, 601, 1e9):
            metrics.request_duration.labels("r", "p", "chat").observe(seconds)
    return metrics.exposition()


def test_a_series_updates_exactly_as_prometheus_clients_own_methods_do():
    through_series = _updated(through_series=True)
    assert through_series == _updated(through_series=False)
    text = through_series.decode()
    assert 'tollgate_request_duration_seconds_bucket{le="0.005",provider="p",route="r",surface="chat"} 2.0' in text
    assert 'tollgate_request_duration_seconds_bucket{le="600.0",provider="p",route="r",surface="chat"} 6.0' in text
    assert 'tollgate_request_duration_seconds_bucket{le="+Inf",provider="p",route="r",surface="chat"} 8.0' in text
