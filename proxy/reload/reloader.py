"""Reloading the config while serving: `POST /admin/reload`, SIGHUP, and (with
`server.watch_config: true`) a change to the file.

A reload reads the file and validates it exactly as start-up does; only then is
the next gateway built beside the current one (unchanged providers carried over
with their warm pools) and swapped in. A bad config is refused with every error,
and the old one serves on. Requests already running keep the gateway they started
on; once the last of them has ended, the providers only that gateway held close.

With `--workers N` the worker that reloads posts the text it validated on the
ReloadBoard, and answers once every worker serves it (see proxy/reload/board.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from ..config import ConfigError, LoadedConfig, read_config_text
from ..config.checks import parse_checked
from ..config.diff import restart_only_changes
from ..config.watch import ConfigWatch
from ..serving.background import Background
from ..serving.gateway import Gateway, GatewayFactory
from ..telemetry.metrics import Metrics
from .board import ReloadBoard

log = logging.getLogger("tollgate")

Trigger = Literal["admin", "sighup", "watch", "peer"]
FOLLOW_INTERVAL_S = 0.25  # how often a worker looks for a config another worker posted
CONFIRM_TIMEOUT_S = 15.0  # how long a reload waits for the other workers to apply it


class Serves(Protocol):
    """Where the app keeps the gateway that arriving requests run on (its AppState)."""

    gateway: Gateway
    metrics: Metrics


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    result: Literal["ok", "unchanged", "failed"]
    version: str  # the config serving after the reload
    previous_version: str
    errors: tuple[str, ...] = ()  # why a failed reload was refused, each with its location
    restart_required: tuple[str, ...] = ()  # changed settings that wait for a restart
    workers: dict[int, str] = field(default_factory=dict)  # with --workers N: pid → version it serves

    @property
    def lagging(self) -> dict[int, str]:
        """Workers that did not confirm this reload's version in time."""
        return {pid: version for pid, version in self.workers.items() if version != self.version}

    def document(self) -> dict[str, Any]:
        """What `POST /admin/reload` answers."""
        document: dict[str, Any] = {
            "result": self.result,
            "config_version": self.version,
            "previous_config_version": self.previous_version,
            "restart_required": list(self.restart_required),
        }
        if self.workers:
            document["workers"] = {str(pid): version for pid, version in sorted(self.workers.items())}
        return document


class Reloader:
    def __init__(
        self,
        source: str | Path,
        env: Mapping[str, str],
        factory: GatewayFactory,
        *,
        board: ReloadBoard | None = None,
        generation: int = 0,
    ) -> None:
        self.source = str(source)
        self.env = env
        self.factory = factory
        self.board = board
        self.generation = generation  # the board's generation this worker serves
        self._lock = asyncio.Lock()  # one reload at a time; requests never take it
        self._state: Serves | None = None
        self._retiring: set[Gateway] = set()
        self._tasks = Background()
        self._watch: ConfigWatch | None = None

    @property
    def _metrics(self) -> Metrics:
        assert self._state is not None, "start() first"
        return self._state.metrics

    @property
    def _current(self) -> Gateway:
        assert self._state is not None, "start() first"
        return self._state.gateway

    # --- serving ----------------------------------------------------------------------------

    async def start(self, state: Serves) -> None:
        """Take SIGHUP, and follow the board or watch the file, for `state.gateway`."""
        self._state = state
        loop = asyncio.get_running_loop()
        # Only a process's main thread takes signals (not, e.g., a test client's thread).
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(signal.SIGHUP, self._reload_soon, "sighup")
        if self.board is not None:
            self.board.report(self.generation, self._current.version)
            self._tasks.spawn(self._follow_board())
        elif self._current.config.server.watch_config:  # with several workers, the supervisor watches
            self._watch = ConfigWatch(
                self.source, self._current.version, lambda: loop.call_soon_threadsafe(self._reload_soon, "watch")
            )
            self._watch.start()

    async def stop(self) -> None:
        """At shutdown, after requests have drained: stop listening, and close what only
        retired gateways hold (the app closes the current one)."""
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a late SIGHUP must not cut the ledger's flush short
        if self._watch is not None:
            self._watch.stop()
        await self._tasks.cancel()
        if self.board is not None:
            self.board.withdraw()
        for gateway in list(self._retiring):
            self._retiring.discard(gateway)
            await self._close_unheld(gateway)

    # --- reloading --------------------------------------------------------------------------

    async def reload(self, trigger: Trigger) -> ReloadOutcome:
        """Reload from the file; with several workers, bring them all onto the result."""
        async with self._lock:
            try:
                text = await asyncio.to_thread(read_config_text, self.source)
            except ConfigError as error:
                return self._refused(error, trigger)
            outcome = await self._apply(text, trigger)
            if self.board is None or outcome.result == "failed":
                return outcome
            self.generation = self.board.post(text, outcome.version)
            self.board.report(self.generation, outcome.version)
        reports = await self.board.confirm(self.generation, timeout_s=CONFIRM_TIMEOUT_S)
        return replace(outcome, workers={pid: version for pid, (_, version) in reports.items()})

    async def _apply(self, text: str, trigger: Trigger) -> ReloadOutcome:
        current = self._current
        try:
            loaded = await asyncio.to_thread(self._validated, text)
        except ConfigError as error:
            return self._refused(error, trigger)
        if loaded.version == current.version:
            self._metrics.config_reloads.labels("unchanged").inc()
            log.info("config reload: unchanged", extra={"trigger": trigger, "config_version": current.version})
            return ReloadOutcome("unchanged", current.version, current.version)
        try:
            successor = self.factory.build(loaded, previous=current)
        except Exception:
            log.exception("config reload failed while building providers", extra={"trigger": trigger})
            self._metrics.config_reloads.labels("failed").inc()
            error = "its providers could not be built; the proxy's log has the details"
            return ReloadOutcome("failed", current.version, current.version, errors=(error,))

        assert self._state is not None
        self._state.gateway = successor  # from here on, arriving requests run on the new config
        self._retire(current)
        if successor.config.server.metrics:
            self._metrics.publish_config(successor.version, successor.config)
        self._metrics.config_reloads.labels("ok").inc()
        restart = tuple(restart_only_changes(current.config, successor.config))
        log.info(
            "config reloaded",
            extra={
                "trigger": trigger,
                "config_version": successor.version,
                "previous_config_version": current.version,
                "restart_required": list(restart),
            },
        )
        if restart:
            log.warning("some changed settings take effect only after a restart", extra={"settings": list(restart)})
        if successor.simulated and successor.simulated != current.simulated:
            log.warning("simulated upstreams", extra={"simulated_providers": sorted(successor.simulated)})
        return ReloadOutcome("ok", successor.version, current.version, restart_required=restart)

    def _validated(self, text: str) -> LoadedConfig:
        """Exactly what start-up checks; also starts the simulator if the new config needs it."""
        loaded = parse_checked(text, self.env, source=self.source)
        self.factory.prepare(loaded.config)
        return loaded

    def _refused(self, error: ConfigError, trigger: Trigger) -> ReloadOutcome:
        version = self._current.version
        errors = tuple(str(issue) for issue in error.issues)
        self._metrics.config_reloads.labels("failed").inc()
        log.error(
            "config reload refused; the previous config keeps serving",
            extra={"trigger": trigger, "config": error.source, "config_version": version, "errors": list(errors)},
        )
        return ReloadOutcome("failed", version, version, errors=errors)

    def _reload_soon(self, trigger: Trigger) -> None:
        self._tasks.spawn(self.reload(trigger))

    async def _follow_board(self) -> None:
        """Apply what another worker posted, and report it."""
        assert self.board is not None
        while True:
            await asyncio.sleep(FOLLOW_INTERVAL_S)
            posted = self.board.newer_than(self.generation)
            if posted is None:
                continue
            async with self._lock:
                if posted.generation <= self.generation:
                    continue  # this worker posted it, or has since applied a later one
                outcome = await self._apply(posted.text, "peer")
                self.generation = posted.generation
                self.board.report(posted.generation, outcome.version)

    # --- retiring the old gateway -------------------------------------------------------------

    def _retire(self, gateway: Gateway) -> None:
        self._retiring.add(gateway)
        self._tasks.spawn(self._close_when_drained(gateway))

    async def _close_when_drained(self, gateway: Gateway) -> None:
        try:
            async with asyncio.timeout(gateway.longest_request_s):
                await gateway.drained()
        except TimeoutError:
            log.warning(
                "closing a retired config's providers with requests still running on them",
                extra={"config_version": gateway.version, "in_flight": gateway.in_flight},
            )
        self._retiring.discard(gateway)
        await self._close_unheld(gateway)

    async def _close_unheld(self, gateway: Gateway) -> None:
        """Close `gateway`'s providers that neither the current gateway nor another
        retiring one holds: a provider carried over through several reloads stays open."""
        held = {id(provider) for other in (self._current, *self._retiring) for provider in other.providers.values()}
        for provider in gateway.providers.values():
            if id(provider) not in held:
                held.add(id(provider))
                await provider.aclose()
