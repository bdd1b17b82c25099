"""End-to-end fixtures: the simulator and the proxy as real processes on loopback,
driven with the official OpenAI SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import Proxy, Server, free_port, routed_config, serve_in, tollgate, wait_until_ready


@pytest.fixture(scope="session")
def simulator(tmp_path_factory) -> Iterator[Server]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("simulator") / "simulator.log"
    process = tollgate("simulate", "--port", str(port), log_path=log_path)
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    wait_until_ready(f"{server.url}/_sim/requests", process)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def start_proxy(tmp_path_factory) -> Iterator:
    """Start `tollgate serve` on a config; every proxy started is stopped at the end."""
    started: list[Proxy] = []

    def start(
        config: str,
        *args: str,
        env: dict[str, str] | None = None,
        ready: bool = True,
        folder: Path | None = None,
        port: int | None = None,
        own_group: bool = False,
    ) -> Proxy:
        """`folder`: start in an earlier proxy's folder, to find its ledger and journal (a restart).
        `own_group`: in a process group of its own, which a test may signal as a whole."""
        folder = folder or tmp_path_factory.mktemp("proxy")
        return serve_in(folder, config, *args, env=env, port=port, own_group=own_group, ready=ready, started=started)

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture(scope="session")
def proxy(simulator, start_proxy) -> Proxy:
    """The proxy most tests share: providers `openai` and `acme` on the simulator."""
    return start_proxy(routed_config(simulator.url))
