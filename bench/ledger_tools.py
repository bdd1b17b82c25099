"""What bench/ledger_scale.py runs its measurements with: `tollgate serve` on a ledger
(HTTP timings of the admin API), `tollgate spend` as a child process watched for its
first byte and its memory, and the results file's section."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
ADMIN_KEY = "sk-bench-admin"


class Served:
    """`tollgate serve` on the ledger at `url`, started in `folder`, stopped on leaving."""

    def __init__(self, url: str, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "config.yaml"
        self.config.write_text(
            f"server: {{admin_key: {ADMIN_KEY}}}\n"
            f"ledger: {{url: '{url}', journal_dir: '{folder}/journal', read_wait_s: 30}}\n"
            "providers: {openai: {kind: openai, api_key: sk-bench-unused, billing_owner: openai/org-acme, "
            "price_table: openai-official}}\n"
            "routes: {gpt-5.4: {targets: [{provider: openai, model: gpt-5.4}]}}\n"
        )
        self.log = folder / "serve.log"
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        command = [sys.executable, "-m", "proxy.cli", "serve", "--config", str(self.config), "--port", str(self.port)]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"tollgate serve not ready after 120 s: {self.log.read_text()[-2000:]}")
        self.client = httpx.Client(base_url=self.base, headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=120)
        return self

    def timed(self, path: str, *, repeat: int = 1) -> tuple[float, Any]:
        """The median seconds `GET path` took over `repeat` tries, and its last answer."""
        times, answer = [], None
        for _ in range(repeat):
            began = time.perf_counter()
            response = self.client.get(path)
            times.append(time.perf_counter() - began)
            assert response.status_code == 200, response.text[:500]
            answer = response.json()
        return statistics.median(times), answer

    def __exit__(self, *_: Any) -> None:
        self.client.close()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def cli_run(config: Path, flags: list[str], scratch: Path) -> dict[str, Any]:
    """`tollgate spend --format focus FLAGS` to a file: its wall time, when its first byte came,
    its RSS sampled every 0.1 s and its peak (VmHWM), the lines it wrote and the sum of their
    BilledCost."""
    out = scratch / f"focus-{'-'.join(flag.strip('-') for flag in flags)}.csv"
    command = [sys.executable, "-m", "proxy.cli", "spend", "--config", str(config), "--format", "focus", *flags]
    began = time.perf_counter()
    with out.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.PIPE)
    first_byte, samples, peak = None, [], 0.0
    while True:
        finished, status = os.waitpid(process.pid, os.WNOHANG)
        if finished:
            break
        if first_byte is None and out.stat().st_size:
            first_byte = time.perf_counter() - began
        if memory := _memory_mb(process.pid):
            samples.append(memory["VmRSS"])
            peak = max(peak, memory["VmHWM"])  # the peak since exec; the kernel's rusage counts the fork's too
        time.sleep(0.1)
    wall = time.perf_counter() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0, process.stderr.read().decode()[-2000:] if process.stderr else ""
    lines, billed = 0, Decimal(0)
    with out.open() as text:
        header = text.readline().rstrip("\n").split(",")
        column = header.index("BilledCost")
        for line in text:
            lines += 1
            billed += Decimal(line.split(",")[column])  # no quoted commas before BilledCost
    return {
        "wall_s": wall,
        "first_byte_s": first_byte if first_byte is not None else wall,
        "peak_rss_mb": peak,
        "rss_mb": samples,
        "lines": lines,
        "billed_usd": billed,
    }


def _memory_mb(pid: int) -> dict[str, float]:
    """The process's resident set now (VmRSS) and at its peak (VmHWM), in MB; empty once it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    found = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in lines if line.startswith(("VmRSS", "VmHWM"))}
    return found if len(found) == 2 else {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_average() -> str:
    return " / ".join(f"{value:.1f}" for value in os.getloadavg())


def write_section(path: Path, heading: str, text: str) -> None:
    """Put `text` in `path` in place of the section under `heading` (to the next heading of
    its level), or at the end if it has none."""
    current = path.read_text() if path.exists() else ""
    start = current.find(f"\n{heading}\n")
    if start < 0:
        path.write_text(current.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n")
        return
    level = heading.split(" ")[0] + " "
    end = current.find(f"\n{level}", start + len(heading) + 2)
    rest = current[end:] if end >= 0 else "\n"
    path.write_text(current[: start + 1] + text.rstrip("\n") + "\n" + rest)
