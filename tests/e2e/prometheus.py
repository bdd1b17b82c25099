"""A real Prometheus (Debian's `prometheus` package) for the end-to-end tests: it scrapes
a proxy's /metrics every second, loads rule files, and answers PromQL over its HTTP API."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import yaml

from .harness import Server, free_port, wait_until_ready

T = TypeVar("T")
SCRAPE_INTERVAL = "1s"


class QueryError(Exception):
    """Prometheus refused a query: a syntax error, an unknown function, a bad range."""


@dataclass
class Prometheus(Server):
    def api(self, path: str, **params: object) -> object:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise QueryError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """An instant query's result as Prometheus gives it: `[{"metric": {...}, "value": [t, "v"]}]`."""
        data = self.api("query", query=expr)
        return (
            data["result"] if data["resultType"] in ("vector", "matrix") else [{"metric": {}, "value": data["result"]}]
        )

    def label_values(self, label: str, match: str) -> list[str]:
        return self.api(f"label/{label}/values", **{"match[]": match})

    def rule_groups(self) -> list[dict]:
        return self.api("rules")["groups"]


def start_prometheus(folder: Path, target: str, rule_files: list[Path]) -> Prometheus:
    """Prometheus scraping `target` (host:port) every second, its rules evaluated as often."""
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    assert Path(binary).exists(), "Prometheus is not installed: run scripts/test as root"
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [{"job_name": "tollgate", "static_configs": [{"targets": [target]}]}],
    }
    config_path = folder / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = folder / "prometheus.log"
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        cwd=folder,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    prometheus = Prometheus(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_until_ready(f"{prometheus.url}/-/ready", process, timeout_s=30)
    except Exception:
        prometheus.stop()
        raise
    return prometheus


def poll(check: Callable[[], T | None], *, what: str, timeout_s: float = 30, every_s: float = 0.1) -> T:
    """`check()`'s first truthy answer, or a TimeoutError naming `what` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout_s}s")
        time.sleep(every_s)
