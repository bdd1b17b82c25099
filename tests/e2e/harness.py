"""The end-to-end harness: real processes on loopback, started with the same
`tollgate` commands a user runs, and helpers to drive and inspect them."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
CLIENT_KEY = "sk-client-never-forwarded"
OPENAI_UPSTREAM_KEY = "sk-upstream-openai"
ACME_UPSTREAM_KEY = "sk-upstream-acme"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(url: str, process: subprocess.Popen, *, timeout_s: float = 60) -> None:
    """Until `url` answers 200; generous, as importing LiteLLM alone takes seconds on a busy machine."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout_s}s")


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def stop_all(servers: list[Server], timeout_s: float = 15) -> None:
    """Stop them together: each is sent SIGTERM at once, then each is waited for (and killed
    if it takes longer than `timeout_s`), so stopping many costs about as long as the slowest."""
    for server in servers:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
    for server in servers:
        server.stop(timeout_s=timeout_s)


def tollgate(
    *args: str, log_path: Path, env: dict[str, str] | None = None, own_group: bool = False
) -> subprocess.Popen:
    """`tollgate …` run from the log's folder, so each process keeps its ledger and journal to itself.
    `own_group`: in a session and process group of its own (its pid), as systemd starts it."""
    return subprocess.Popen(
        [sys.executable, "-m", "proxy.cli", *args],
        cwd=log_path.parent,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=own_group,
    )


def child_processes(pid: int) -> dict[int, str]:
    """The live (not yet exited) children of `pid`: pid → command line."""
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it ended meanwhile
            continue
        if int(parent) == pid and state != "Z":
            children[int(entry.name)] = command
    return children


def spawned_children(pid: int) -> list[int]:
    """The Python processes `pid` started: serve's workers (multiprocessing), or a process's ledger writer."""
    return sorted(
        child
        for child, command in child_processes(pid).items()
        if "spawn_main" in command or "proxy.ledger.writer_process" in command
    )


def eventually(check, timeout_s: float = 30, interval_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval_s)
    return bool(check())


@dataclass
class Proxy(Server):
    config_path: Path = field(default=Path())

    def client(self, **options) -> OpenAI:
        options.setdefault("api_key", CLIENT_KEY)
        return OpenAI(base_url=f"{self.url}/v1", max_retries=0, **options)


def serve_in(
    folder: Path,
    config: str,
    *args: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
    own_group: bool = False,
    ready: bool = True,
    started: list[Proxy] | None = None,
) -> Proxy:
    """`tollgate serve` on `config`, written to `folder`, where the proxy keeps its journal
    (and its SQLite ledger, unless `env` names another). Starting again in the same folder
    and on the same port is a restart: the new process replays what the old one left.
    `started`: where the proxy is listed as soon as it runs, so whoever stops them stops it
    even when it never becomes ready."""
    config_path = folder / "config.yaml"
    config_path.write_text(config)
    port = port or free_port()
    log_path = folder / f"proxy-{port}.log"
    if log_path.exists():  # a restart: the earlier run's log is kept beside
        log_path = folder / f"proxy-{port}-{len(list(folder.glob(f'proxy-{port}*.log')))}.log"
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
    if started is not None:
        started.append(proxy)
    if ready:
        wait_until_ready(f"{proxy.url}/readyz", process)
    return proxy


def run_command(proxy: Proxy, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`tollgate <args> --config <the proxy's config>` run to its end in the proxy's folder, on its ledger."""
    folder = proxy.config_path.parent
    return subprocess.run(
        [sys.executable, "-m", "proxy.cli", *args, "--config", str(proxy.config_path)],
        cwd=folder,
        env={**os.environ, "TOLLGATE_LEDGER_URL": f"sqlite:///{folder}/ledger.db", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def ledger_rows(proxy: Proxy, where: str = "1 = 1") -> int:
    """Rows in a proxy's SQLite ledger (in its folder) that match `where`; 0 before the table exists."""
    with closing(sqlite3.connect(proxy.config_path.parent / "ledger.db")) as database:
        try:
            return database.execute(f"SELECT count(*) FROM ledger WHERE {where}").fetchone()[0]
        except sqlite3.OperationalError:  # the writer has not made the table yet
            return 0


def requests_in_flight(proxy: Proxy) -> float:
    """What the proxy is serving now (every worker's), from its own gauge: a test waits for
    its requests to be in flight rather than sleeping and hoping they are."""
    metrics = text_string_to_metric_families(httpx.get(f"{proxy.url}/metrics").text)
    return sum(
        sample.value for family in metrics if family.name == "tollgate_in_flight_requests" for sample in family.samples
    )


def marker(fault: str | None = None, **options: object) -> str:
    """A simulator marker (a fault, a delay, or only an id), unique to the test that writes it."""
    options = {"fault": fault, **options, "id": uuid.uuid4().hex[:12]}
    return "[sim " + " ".join(f"{key}={value}" for key, value in options.items() if value is not None) + "]"


def marker_id(text: str) -> str:
    return text.split("id=", 1)[1].split("]", 1)[0]


def upstream_requests(simulator: Server, containing: str | None = None) -> list[dict]:
    requests = httpx.get(f"{simulator.url}/_sim/requests").json()
    requests = requests["requests"] if isinstance(requests, dict) else requests
    if containing is None:
        return requests
    return [r for r in requests if containing in str(r)]
