"""End-to-end fixtures: the simulator and the proxy as real processes on loopback,
driven with the official OpenAI SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .configs import ConfigFile, routed
from .harness import Proxy, Server, free_port, stop_all, tollgate, wait_until_ready


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
    """Start `tollgate serve` on a config. A proxy lives as long as what started it: the
    test, or the module of a module-scoped fixture (see `_stop_proxies_*` below); the
    shared `proxy` lives for the session. Idle proxies left running would each keep a
    ledger writer busy, and a few dozen of them slow every later test."""
    started: list[Proxy] = []

    def start(
        config: ConfigFile | str,
        *args: str,
        env: dict[str, str] | None = None,
        ready: bool = True,
        folder: Path | None = None,
        port: int | None = None,
        own_group: bool = False,
    ) -> Proxy:
        """`config`: built (tests/e2e/configs.py), or a file's text as it is (the example config).
        `folder`: start in an earlier proxy's folder, to find its ledger and journal (a restart).
        `own_group`: in a process group of its own, which a test may signal as a whole."""
        folder = folder or tmp_path_factory.mktemp("proxy")
        config_path = folder / "config.yaml"
        config_path.write_text(config if isinstance(config, str) else config.yaml())
        port = port or free_port()
        log_path = folder / f"proxy-{port}.log"
        process = tollgate(
            "serve",
            "--config",
            str(config_path),
            "--port",
            str(port),
            *args,
            log_path=log_path,
            env={"TOLLGATE_LEDGER_URL": f"sqlite:///{folder}/ledger.db", **(env or {})},
            own_group=own_group,
        )
        proxy = Proxy(f"http://127.0.0.1:{port}", process, log_path, config_path)
        started.append(proxy)
        if ready:
            wait_until_ready(f"{proxy.url}/readyz", process)
        return proxy

    start.started = started  # type: ignore[attr-defined]
    start.kept = set()  # type: ignore[attr-defined]  # ids of the proxies the session shares
    yield start
    stop_all(started)


def _stop_those_started_since(start_proxy, mark: int) -> None:
    started = start_proxy.started
    ending = [proxy for proxy in started[mark:] if id(proxy) not in start_proxy.kept]
    stop_all(ending)
    started[mark:] = [proxy for proxy in started[mark:] if id(proxy) in start_proxy.kept]


@pytest.fixture(scope="module", autouse=True)
def _stop_proxies_of_the_module(start_proxy) -> Iterator[None]:
    mark = len(start_proxy.started)
    yield
    _stop_those_started_since(start_proxy, mark)


@pytest.fixture(autouse=True)
def _stop_proxies_of_the_test(start_proxy) -> Iterator[None]:
    mark = len(start_proxy.started)
    yield
    _stop_those_started_since(start_proxy, mark)


@pytest.fixture(scope="session")
def proxy(simulator, start_proxy) -> Proxy:
    """The proxy most tests share: providers `openai` and `acme` on the simulator."""
    shared = start_proxy(routed(simulator.url))
    start_proxy.kept.add(id(shared))
    return shared
