"""The proxy the check starts when it is given no `--url`: the config's own
Tollgate, in this process on a free loopback port, with its real ledger and
metrics, and the simulator where `--simulate-upstreams` (or an empty api_key)
asks for it.

The check needs the admin key to read its rows, and a client key when the config
has `keys:`. Where the config gives none, fresh ones are made for this run only:
held in memory, never written to the config, a log or the report."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import uvicorn
from pydantic import SecretStr

from ..config import LoadedConfig
from ..config.schema import ClientKey
from ..runtime.server import build_app
from ..serving.gateway import GatewayFactory
from ..serving.loopback import LoopbackServer
from ..serving.simulated_upstreams import InProcessSimulator, banner, needs_in_process_simulator, providers_to_simulate
from ..state import open_state
from ..telemetry.logs import configure_logging
from ..telemetry.metrics import Metrics, process_registry
from .api import ANY_KEY

KEY_ID = "tollgate-launch-check"  # the rows' key_id when the check brings its own client key


class LocalProxyFailed(Exception):
    """The in-process proxy did not start (its log says why, e.g. the ledger database is down)."""


@dataclass(frozen=True, slots=True)
class LocalProxy:
    url: str
    admin_key: str
    api_key: str
    simulated: bool


@contextmanager
def local_proxy(loaded: LoadedConfig, *, simulate_all: bool) -> Iterator[LocalProxy]:
    config = loaded.config
    configured = config.server.admin_key.get_secret_value() if config.server.admin_key else ""
    admin_key = configured or secrets.token_urlsafe(24)
    api_key = ANY_KEY
    keys = config.keys
    if keys is not None:
        api_key = f"sk-launch-check-{secrets.token_urlsafe(24)}"
        keys = [*keys, ClientKey(id=KEY_ID, key=SecretStr(api_key))]
    server_settings = config.server.model_copy(update={"admin_key": SecretStr(admin_key)})
    running = replace(loaded, config=config.model_copy(update={"server": server_settings, "keys": keys}))

    simulated = providers_to_simulate(config, simulate_all=simulate_all)
    simulator = InProcessSimulator() if needs_in_process_simulator(config, simulated) else None
    simulator_url = simulator.start() if simulator else None
    if simulated:
        print(banner(config, simulated, simulator_url), file=sys.stderr, flush=True)
    # The proxy's warnings and errors, in the config's format; not its access log, which would
    # interleave with the check's progress (the report lists every request the check made).
    configure_logging("warning", config.server.log.format)
    metrics = Metrics(process_registry())
    counters = open_state(config.state, report_pending=metrics.state_pending_writes.set)
    factory = GatewayFactory(simulate_all=simulate_all, counters=counters, simulator_url=simulator_url)
    app = build_app(running, factory, metrics=metrics)
    server = LoopbackServer(
        lambda host, port: uvicorn.Config(
            app, host=host, port=port, log_config=None, log_level="warning", access_log=False, lifespan="on"
        ),
        name="the in-process Tollgate",
    )
    try:
        try:
            url = server.start()
        except RuntimeError as error:
            raise LocalProxyFailed(str(error)) from None
        yield LocalProxy(url, admin_key, api_key, simulated=bool(simulated))
    finally:
        # Shutdown drains the ledger into its database: give it the time the config allows.
        server.stop(timeout_s=config.server.drain_timeout_s + config.ledger.drain_timeout_s)
        if simulator is not None:
            simulator.stop()
