"""`tollgate serve`: load the config, start the simulator where providers need it,
and run the ASGI app under uvicorn (uvloop and httptools) in one or N processes.
SIGTERM stops accepting, lets requests in flight finish, then closes providers."""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import orjson
import uvicorn
from starlette.applications import Starlette

from .app import create_app
from .config import Config, LoadedConfig
from .configuration import load_checked
from .gateway import Gateway
from .logs import configure_logging
from .metrics import MULTIPROCESS_DIR
from .simulation import InProcessSimulator, banner, needs_in_process_simulator, providers_to_simulate
from .state import open_state

log = logging.getLogger("tollgate")

# How the supervisor hands its decisions to worker processes (`--workers N`).
_ENV_CONFIG = "TOLLGATE_CONFIG"
_ENV_SIMULATED = "TOLLGATE_SIMULATED"
_ENV_SIMULATOR_URL = "TOLLGATE_SIMULATOR_URL"


def serve(config_path: str, *, host: str | None, port: int | None, workers: int | None, simulate_all: bool) -> None:
    loaded = load_checked(config_path, os.environ)
    config = loaded.config
    configure_logging(config.server.log.level, config.server.log.format)
    host = host or config.server.host
    port = config.server.port if port is None else port
    workers = workers or config.server.workers

    simulated = providers_to_simulate(config, simulate_all=simulate_all)
    simulator_url = None
    if needs_in_process_simulator(config, simulated):
        simulator_url = InProcessSimulator().start()
    if simulated:
        print(banner(simulated, simulator_url), file=sys.stderr, flush=True)
        log.warning("simulated upstreams", extra={"simulated_providers": sorted(simulated)})
    if not config.ledger.enabled:
        log.warning("LEDGER OFF (ledger.enabled: false): no request is recorded, nothing is billed to anyone")
    if config.keys is None:
        log.warning("no `keys:` section in the config: the proxy is OPEN, any client may call it")
    if workers > 1 and not config.state.url.startswith("redis") and _counts_anything(config):
        log.warning(
            "budgets and rate limits are kept in each worker's memory (state.url: memory://): with "
            f"{workers} workers each allows the full amount; set state.url: redis://HOST:PORT/DB to share them"
        )

    options = dict(
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        server_header=False,
        log_level=config.server.log.level,
        timeout_graceful_shutdown=int(config.server.drain_timeout_s),
        lifespan="on",
    )
    log.info(
        "serving",
        extra={
            "url": f"http://{host}:{port}",
            "workers": workers,
            "config": loaded.source,
            "config_version": loaded.version,
        },
    )
    exit_cleanly_after_drain()
    if workers == 1:
        app = build_app(loaded, simulated, simulator_url)
        uvicorn.Server(uvicorn.Config(app, log_config=None, **options)).run()
        return
    # Each worker keeps its metrics in files here, and /metrics in any worker sums them all.
    os.environ[MULTIPROCESS_DIR] = tempfile.mkdtemp(prefix="tollgate-metrics-")
    os.environ[_ENV_CONFIG] = str(Path(config_path).resolve())
    os.environ[_ENV_SIMULATED] = orjson.dumps(simulated).decode()
    os.environ[_ENV_SIMULATOR_URL] = simulator_url or ""
    uvicorn.run("proxy.server:app_for_worker", factory=True, workers=workers, log_config=None, **options)


def exit_cleanly_after_drain() -> None:
    """After draining, uvicorn re-raises the stop signal to reach the handler that was
    there before it. A no-op there makes a drained shutdown exit 0, not "killed by SIGTERM"."""
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: None)


def app_for_worker() -> Starlette:
    """Each worker process builds its own app from what the supervisor decided."""
    loaded = load_checked(os.environ[_ENV_CONFIG], os.environ)
    configure_logging(loaded.config.server.log.level, loaded.config.server.log.format)
    simulated = orjson.loads(os.environ.get(_ENV_SIMULATED, "{}"))
    return build_app(loaded, simulated, os.environ.get(_ENV_SIMULATOR_URL) or None)


def build_app(loaded: LoadedConfig, simulated: Mapping[str, str], simulator_url: str | None) -> Starlette:
    """The app for one process: also what `tollgate launch-check` serves in-process."""
    state = open_state(loaded.config.state)
    return create_app(
        lambda: Gateway.build(loaded, simulated=simulated, simulator_url=simulator_url, counters=state), state=state
    )


def _counts_anything(config: Config) -> bool:
    owners = [*(config.keys or ()), *config.teams.values()]
    return any(owner.budgets or owner.rate_limits for owner in owners)
