"""End-to-end fixtures: the simulator and the proxy as real processes on loopback,
driven with the official OpenAI SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .configs import ConfigFile, routed
from .harness import Proxy, Server, free_port, serve_in, stop_all, tollgate, wait_until_ready


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
    test, a module-scoped fixture's module, or a session-scoped fixture's session (see
    `_stop_proxies_*` below). Idle proxies left running would each keep a ledger writer
    busy, and a few dozen of them slow every later test."""
    started: list[tuple[Proxy, str]] = []  # each with the scope that started it

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
        text = config if isinstance(config, str) else config.yaml()
        folder = folder or tmp_path_factory.mktemp("proxy")
        proxy = serve_in(folder, text, *args, env=env, port=port, own_group=own_group, ready=False)
        started.append((proxy, _starting_scope()))  # listed before the wait, so a proxy never ready is stopped too
        if ready:
            wait_until_ready(f"{proxy.url}/readyz", proxy.process)
        return proxy

    start.started = started  # type: ignore[attr-defined]
    yield start
    stop_all([proxy for proxy, _ in started])


# The scopes of the fixtures being set up right now, outermost first: a proxy started while a
# module-scoped fixture is set up (even from inside a test's own fixture) lives for the module.
_fixtures_being_set_up: list[str] = []
_WIDER_FIRST = ("session", "package", "module", "class", "function")


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef, request):
    _fixtures_being_set_up.append(fixturedef.scope)
    try:
        yield
    finally:
        _fixtures_being_set_up.pop()


def _starting_scope() -> str:
    return min(_fixtures_being_set_up, key=_WIDER_FIRST.index, default="function")


def _stop_those_started_since(start_proxy, mark: int, scopes: tuple[str, ...]) -> None:
    started = start_proxy.started
    stop_all([proxy for proxy, scope in started[mark:] if scope in scopes])
    started[mark:] = [(proxy, scope) for proxy, scope in started[mark:] if scope not in scopes]


@pytest.fixture(scope="module", autouse=True)
def _stop_proxies_of_the_module(start_proxy) -> Iterator[None]:
    mark = len(start_proxy.started)
    yield
    _stop_those_started_since(start_proxy, mark, ("module", "class", "function"))


@pytest.fixture(autouse=True)
def _stop_proxies_of_the_test(start_proxy) -> Iterator[None]:
    mark = len(start_proxy.started)
    yield
    _stop_those_started_since(start_proxy, mark, ("function",))


@pytest.fixture(scope="session")
def proxy(simulator, start_proxy) -> Proxy:
    """The proxy most tests share: providers `openai` and `acme` on the simulator."""
    return start_proxy(routed(simulator.url))
