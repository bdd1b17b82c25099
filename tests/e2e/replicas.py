"""Tollgate replicas on loopback, each `tollgate serve` in a folder of its own (its
journal is its own) on one config: one PostgreSQL ledger and one Redis among them,
as the config says. One may be killed with SIGKILL, all its processes at once (its
ledger writer too), as the kernel's OOM killer or a lost node would, and started
again where it was: same folder, same port. That start replays the journal the
killed one left, and the rows it had started become `abandoned`."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from .harness import Proxy, free_port, serve_in


class Replicas:
    def __init__(self, config: str, folder: Path, count: int, env: dict[str, str]) -> None:
        self.config = config
        self.env = env
        self.folders = [folder / f"replica-{index}" for index in range(count)]
        self.ports = [free_port() for _ in range(count)]
        self.started: list[Proxy] = []  # every process started, the killed ones included
        self.live: list[Proxy | None] = [None] * count

    def start(self) -> None:
        for index in range(len(self.folders)):
            self.folders[index].mkdir(parents=True, exist_ok=True)
            self.restart(index)

    def restart(self, index: int) -> Proxy:
        """Start replica `index` in its folder, on its port, and wait until it is ready."""
        self.live[index] = serve_in(
            self.folders[index],
            self.config,
            env=self.env,
            port=self.ports[index],
            own_group=True,
            started=self.started,
        )
        return self.live[index]

    def kill(self, index: int) -> None:
        """SIGKILL to the replica's process group: it and its children die at once."""
        proxy = self.live[index]
        assert proxy is not None, f"replica {index} is not running"
        os.killpg(proxy.process.pid, signal.SIGKILL)
        proxy.process.wait(10)
        self.live[index] = None

    def sessions(self) -> list[int]:
        """The session id of each replica running now (its processes' CPU is counted by session)."""
        return [proxy.process.pid for proxy in self.live if proxy is not None]

    def stop(self) -> None:
        for proxy in self.started:
            proxy.stop()
