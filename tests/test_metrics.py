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
