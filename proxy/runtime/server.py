"""`tollgate serve`: load the config, take the listening socket, start the simulator
where providers need it, and run the ASGI app under uvicorn (uvloop and httptools)
in one or N processes (proxy/runtime/supervisor.py).

SIGTERM or SIGINT, to the process or to its whole group, stops accepting, lets
requests in flight finish (`server.drain_timeout_s`), then closes providers and
flushes the ledger (`ledger.drain_timeout_s`); the ledger writer ignores both
signals and stops when told. SIGHUP reloads the config (proxy/reload/reloader.py).
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from ..config import Config, LoadedConfig, read_config_text
from ..config.checks import parse_checked
from ..http.app import create_app
from ..http.connections import ClientLimits, LimitedHttpToolsProtocol
from ..ledger.writer import discard_early
from ..reload.board import ENV_FOLDER, ReloadBoard
from ..reload.reloader import Reloader
from ..serving.gateway import GatewayFactory
from ..serving.simulated_upstreams import banner
from ..state import open_conversations, open_state
from ..telemetry.logs import configure_logging
from ..telemetry.metrics import MULTIPROCESS_DIR, Metrics, process_registry
from . import allocator
from .supervisor import Supervisor

log = logging.getLogger("tollgate")

# How the supervisor hands its decisions to worker processes (`--workers N`).
_ENV_CONFIG = "TOLLGATE_CONFIG"
_ENV_SIMULATE_ALL = "TOLLGATE_SIMULATE_ALL"
_ENV_SIMULATOR_URL = "TOLLGATE_SIMULATOR_URL"
_STOP_MARGIN_S = 10.0  # beyond both drain bounds: closing providers, the state store, process exit


class CannotListen(Exception):
    """The address is taken, or not this machine's: said in one line, before anything starts."""


def serve(config_path: str, *, host: str | None, port: int | None, workers: int | None, simulate_all: bool) -> None:
    text = read_config_text(config_path)
    loaded = parse_checked(text, os.environ, source=config_path)
    config = loaded.config
    configure_logging(config.server.log.level, config.server.log.format)
    host = host or config.server.host
    port = config.server.port if port is None else port
    workers = workers or config.server.workers
    if workers > 1 or not config.ledger.enabled:
        discard_early()  # each worker opens its own ledger; or there is none
    listener = listen_socket(host, port)
    port = listener.getsockname()[1]  # port 0: the one the system chose

    # The state store connects only when first used, in the process that serves. With
    # several workers each makes its own app, metrics and store (app_for_worker).
    metrics = Metrics(process_registry())
    factory = GatewayFactory(
        simulate_all=simulate_all,
        counters=open_state(config.state, report_pending=metrics.state_pending_writes.set),
        conversations=open_conversations(config.state),
    )
    factory.prepare(config)
    simulated = factory.simulated(config)
    if simulated:
        print(banner(config, simulated, factory.simulator_url), file=sys.stderr, flush=True)
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
    if workers > 1 and not config.state.url.startswith("redis") and _spreads_conversations(config):
        log.warning(
            "which provider made each Responses id is kept in each worker's memory (state.url: memory://): with "
            f"{workers} workers a follow-up may reach a worker that does not know it and be routed as a new "
            "request; set state.url: redis://HOST:PORT/DB to share it"
        )

    limits = ClientLimits(
        config.server.client_header_timeout_s, config.server.client_body_timeout_s, config.server.max_connections
    )
    options = dict(
        host=host,
        port=port,
        loop="uvloop",
        http=functools.partial(LimitedHttpToolsProtocol, limits=limits),  # httptools, with slow-client limits
        ws="none",  # nothing here speaks WebSocket: an upgrade request is served as plain HTTP
        access_log=False,
        server_header=False,
        log_level=config.server.log.level,
        timeout_graceful_shutdown=config.server.drain_timeout_s,  # a float: int() made 0.5 s no wait at all
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
        app = build_app(loaded, factory, Reloader(config_path, os.environ, factory), metrics)
        collect_less()
        uvicorn.Server(uvicorn.Config(app, log_config=None, **options)).run(sockets=[listener])
        return
    # Each worker keeps its metrics in files here, and /metrics in any worker sums them all.
    os.environ[MULTIPROCESS_DIR] = tempfile.mkdtemp(prefix="tollgate-metrics-")
    board = ReloadBoard.create()
    board.post(text, loaded.version)
    os.environ[ENV_FOLDER] = str(board.folder)
    os.environ[_ENV_CONFIG] = str(Path(config_path).resolve())
    os.environ[_ENV_SIMULATE_ALL] = "1" if simulate_all else ""
    os.environ[_ENV_SIMULATOR_URL] = factory.simulator_url or ""
    gc.enable()  # the supervisor's start-up is over (each worker has its own collect_less)
    uvicorn_config = uvicorn.Config(
        "proxy.runtime.server:app_for_worker", factory=True, workers=workers, log_config=None, **options
    )
    stop_timeout_s = config.server.drain_timeout_s + config.ledger.drain_timeout_s + _STOP_MARGIN_S
    supervisor = Supervisor(uvicorn_config, sockets=[listener], stop_timeout_s=stop_timeout_s)
    if config.server.watch_config:
        supervisor.watch(config_path, loaded.version)
    supervisor.run()


def listen_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything says "serving"; uvicorn listens on
    it, and with `--workers N` each worker accepts from it."""
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart may follow a stop at once
    try:
        listener.bind((host, port))
    except OSError as error:  # EADDRINUSE, EACCES, an address not on this machine, a name that does not resolve
        listener.close()
        raise CannotListen(f"cannot listen on {host}:{port}: {(error.strerror or str(error)).lower()}") from None
    listener.set_inheritable(True)
    return listener


def exit_cleanly_after_drain() -> None:
    """After draining, uvicorn re-raises the stop signal to reach the handler that was
    there before it. A no-op there makes a drained shutdown exit 0, not "killed by SIGTERM"."""
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: None)


def app_for_worker() -> Starlette:
    """Each worker process builds its own app from what the supervisor decided, on
    the config text posted last (a refused reload may have left the file broken)."""
    board = ReloadBoard(os.environ[ENV_FOLDER])
    posted = board.read()
    source = os.environ[_ENV_CONFIG]
    loaded = parse_checked(posted.text, os.environ, source=source)
    board.report(posted.generation, loaded.version)  # counted from now on by a reload waiting for every worker
    configure_logging(loaded.config.server.log.level, loaded.config.server.log.format)
    metrics = Metrics(process_registry())
    factory = GatewayFactory(
        simulate_all=bool(os.environ.get(_ENV_SIMULATE_ALL)),
        counters=open_state(loaded.config.state, report_pending=metrics.state_pending_writes.set),
        conversations=open_conversations(loaded.config.state),
        simulator_url=os.environ.get(_ENV_SIMULATOR_URL) or None,
    )
    reloader = Reloader(source, os.environ, factory, board=board, generation=posted.generation)
    app = build_app(loaded, factory, reloader, metrics)
    collect_less()
    return app


# Allocations of container objects (net of those freed) between two young collections.
_GC_YOUNG_THRESHOLD = 20_000


def collect_less() -> None:
    """Before serving: what start-up made (modules, the config: ~100,000 objects) is
    never garbage, so it is moved out of the collector's sight (`gc.freeze`), and a
    young collection runs every 20,000 allocations, not 700. A request's objects are
    freed by their reference counts; at 700 a collection ran every few requests, and
    with the full ones over start-up's objects took about a tenth of the CPU at chat
    c=64 (bench/). Cyclic garbage still goes, a little later. The C allocator's
    thresholds are fixed too (allocator.py).

    No collection first: `tollgate serve` runs its start-up with the collector off
    (cli.py), and a full collection over start-up's objects would take ~30 ms to find
    ~2,000 objects (~0.4 MB: classes and closures left over by building classes),
    which are frozen with the rest instead. The collector is on again from here."""
    allocator.tune()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(_GC_YOUNG_THRESHOLD, older, oldest)
    gc.enable()


def build_app(
    loaded: LoadedConfig, factory: GatewayFactory, reloader: Reloader | None = None, metrics: Metrics | None = None
) -> Starlette:
    """The app of one process, on `factory`'s counters: each `serve` worker, and the
    in-process proxy of `tollgate launch-check` (a fixed config: no reloader)."""
    return create_app(lambda: factory.build(loaded), reloader=reloader, state=factory.counters, metrics=metrics)


def _spreads_conversations(config: Config) -> bool:
    """Could a follow-up go astray: does any route reach more than one provider?"""
    return any(
        len({target.provider for target in (*route.targets, *route.fallbacks)}) > 1 for route in config.routes.values()
    )


def _counts_anything(config: Config) -> bool:
    owners = [*(config.keys or ()), *config.teams.values()]
    return any(owner.budgets or owner.rate_limits for owner in owners)
