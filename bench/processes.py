"""The servers the benchmark starts, and the promise that none outlives it.

Each server runs in its own session, so stopping it signals its whole process group
(uvicorn or nginx workers included). `Processes` is a context manager: leaving it by
any route — success, an exception, Ctrl-C, or SIGTERM turned into SystemExit by
run.py — stops everything it started.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType


class StartFailed(Exception):
    """A server exited or never became ready; the message ends with its log's tail."""


class Processes:
    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self._running: dict[str, subprocess.Popen] = {}

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.stop_all()

    def start(
        self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.Popen:
        if name in self._running:
            raise ValueError(f"{name} is already running")
        with (self.logs / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        self._running[name] = process
        return process

    def sessions(self) -> dict[str, int]:
        """Name → session id (the leader's pid) of every server still running."""
        return {name: process.pid for name, process in self._running.items()}

    def stop(self, name: str, grace_s: float = 10.0) -> None:
        process = self._running.pop(name, None)
        if process is None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # A worker that outlived its leader still belongs to the group.
        _signal_group(process.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for name in reversed(list(self._running)):
            self.stop(name)

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_until_ready(self, name: str, url: str, timeout_s: float, *, started: float | None = None) -> float:
        """Poll `GET url` until it answers 200; return seconds since `started` (default: now)."""
        process = self._running[name]
        started = time.perf_counter() if started is None else started
        deadline = started + timeout_s
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                raise StartFailed(
                    f"{name} exited with {process.returncode} before it was ready:\n{self.log_tail(name)}"
                )
            if get_status(url) == 200:
                return time.perf_counter() - started
            time.sleep(0.005)
        raise StartFailed(f"{name} was not ready at {url} within {timeout_s:g}s:\n{self.log_tail(name)}")


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone already
        os.killpg(pgid, signum)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_status(url: str) -> int | None:
    """The status of `GET url`, or None when nothing answers yet."""
    host_port, path = _split(url)
    connection = http.client.HTTPConnection(host_port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def post(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float = 30) -> tuple[int, bytes]:
    host_port, path = _split(url)
    connection = http.client.HTTPConnection(host_port, timeout=timeout_s)
    try:
        connection.request("POST", path, body=body, headers=dict(headers))
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _split(url: str) -> tuple[str, str]:
    """'http://127.0.0.1:8080/v1/x' → ('127.0.0.1:8080', '/v1/x')."""
    rest = url.removeprefix("http://")
    host_port, _, path = rest.partition("/")
    return host_port, "/" + path
