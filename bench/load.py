"""Driving load with wrk and post.lua, and measuring one cell (a row × a test) with the
CPU each party used while it ran, so a noisy neighbour shows up instead of hiding, and
the server's resident memory."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from procfs import CpuSnapshot, RssSampler
from upstream import Exchange

SCRIPT = Path(__file__).resolve().with_name("post.lua")
WRK_TIMEOUT_S = 10  # a slower answer counts as a timeout error, not as a latency
# A 200 whose body is shorter than this share of nginx's answer is counted as "short".
# LiteLLM re-serialises bodies, so exact equality is checked once per row (relay_check.py).
MIN_BODY_SHARE = 0.9
# Above this many cores used by processes that are not ours, a cell is measured again.
NOISY_OTHER_CORES = 0.25
QUIET_WAIT_S = 15  # at most this long before each try, waiting for them to stop
_MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Test:
    name: str  # shown in results.md
    key: str  # in results.json
    exchange: str  # "chat" or "image"
    connections: int
    # Check each answer's status and length in Lua (post.lua). Off for the 2 MB answers,
    # where handing every body to Lua would make wrk the heaviest process on the machine;
    # wrk then counts statuses >= 400 itself.
    check_bodies: bool

    @property
    def threads(self) -> int:
        # Two wrk threads can use both cores when the server is fast (nginx);
        # one connection needs one thread.
        return min(2, self.connections)


TESTS = (
    Test("chat, c=1", "chat_c1", "chat", 1, check_bodies=True),
    Test("chat, c=64", "chat_c64", "chat", 64, check_bodies=True),
    Test("image 2 MB, c=16", "image_c16", "image", 16, check_bodies=False),
)


@dataclass(frozen=True, slots=True)
class WrkRun:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    bodies_checked: bool
    non_200: int  # counted only when bodies are checked
    status_400_up: int  # wrk's own count, always there
    short: int  # 200s with a body shorter than MIN_BODY_SHARE of nginx's (a lower bound when not checked)
    socket_errors: int  # connect, read, write and timeout errors

    @property
    def errors(self) -> int:
        return max(self.non_200, self.status_400_up) + self.short + self.socket_errors


def run_wrk(
    url: str,
    exchange: Exchange,
    *,
    connections: int,
    threads: int,
    check_bodies: bool,
    api_key: str,
    duration_s: float,
    headers: Mapping[str, str] | None = None,
) -> WrkRun:
    """One wrk run of whole seconds (wrk reads "1.5s" as 1 s). `headers` go with every
    request besides the API key (Portkey's routing headers)."""
    min_bytes = math.floor(exchange.answer_bytes * MIN_BODY_SHARE)
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{math.ceil(duration_s)}s",
        f"--timeout={WRK_TIMEOUT_S}s",
        "-s",
        str(SCRIPT),
        url + exchange.path,
        "--",
        str(exchange.request),
        str(min_bytes),
        api_key,
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    env = {**os.environ, "WRK_CHECK_BODIES": "1" if check_bodies else "0"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=duration_s + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    short = summary["short"]
    if not summary["bodies_checked"]:
        # Without the hook, wrk's byte count still shows bodies gone missing: every whole
        # answer brings at least min_bytes. A lower bound only, as the answers still in
        # flight when wrk stops add their bytes too.
        answered = summary["requests"] - summary["status_400_up"]
        short = max(0, math.ceil((answered * min_bytes - summary["bytes"]) / min_bytes))
    latency = summary["latency_us"]
    duration = summary["duration_us"] / 1e6
    return WrkRun(
        requests=summary["requests"],
        duration_s=round(duration, 3),
        rps=round(summary["requests"] / duration, 1),
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        mean_ms=round(latency["mean"] / 1000, 3),
        bodies_checked=summary["bodies_checked"],
        non_200=summary["non_200"],
        status_400_up=summary["status_400_up"],
        short=short,
        socket_errors=sum(summary[kind] for kind in ("connect", "read", "write", "timeout")),
    )


@dataclass(frozen=True, slots=True)
class Cell:
    row: str
    test: str
    wrk: WrkRun
    cores: dict[str, float]  # average cores used while measuring, by party
    neighbours: dict[str, float]  # the busiest processes we did not start, "name[pid]" → cores
    tries: int  # > 1 when another process was busy and the cell was measured again
    rss: dict | None  # the server's resident memory while measured (rss_summary)

    def to_json(self) -> dict:
        return {
            "row": self.row,
            "test": self.test,
            **asdict(self.wrk),
            "errors": self.wrk.errors,
            "cores": self.cores,
            "neighbours": self.neighbours,
            "tries": self.tries,
            "rss": self.rss,
        }


def rss_summary(samples: list[tuple[float, int]]) -> dict | None:
    """Lowest, highest and last of RSS samples in MB, every sample, and the growth: the
    median of the second half over the median of the first. Answers in flight come and go
    between samples (at c=16, up to 16 image answers of 2 MB, some held more than once),
    so RSS swings; the medians of a steady server stay put, a leak moves them up."""
    if not samples:
        return None
    values = [rss / _MB for _, rss in samples]
    half = len(values) // 2
    first, second = statistics.median(values[:half] or values), statistics.median(values[half:])
    return {
        "min_mb": round(min(values), 1),
        "max_mb": round(max(values), 1),
        "last_mb": round(values[-1], 1),
        "first_half_median_mb": round(first, 1),
        "second_half_median_mb": round(second, 1),
        "growth_mb": round(second - first, 1),
        "samples_mb": [round(value, 1) for value in values],
    }


def wait_for_quiet(sessions: dict[str, int], limit_s: float = QUIET_WAIT_S) -> None:
    """Return after a second in which processes that are not ours used less than half of
    NOISY_OTHER_CORES, or after `limit_s`: someone else's test run usually ends soon."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = CpuSnapshot.take()
        time.sleep(1.0)
        cores, _ = CpuSnapshot.take().cores_since(before, 1.0, sessions)
        if cores["other"] < NOISY_OTHER_CORES / 2:
            return


def measure(
    row: str,
    base_url: str,
    exchange: Exchange,
    test: Test,
    *,
    sessions: dict[str, int],
    api_key: str,
    headers: Mapping[str, str] | None = None,
    warmup_s: float,
    duration_s: float,
    max_tries: int,
) -> Cell:
    """Wait for a quiet machine, warm up, measure; measure again (up to `max_tries` in all)
    while processes that are not ours keep more than NOISY_OTHER_CORES busy, and keep the
    quietest try. The RSS is the row's own server's (`sessions[row]`; nginx's for direct)."""
    load = dict(
        connections=test.connections,
        threads=test.threads,
        check_bodies=test.check_bodies,
        api_key=api_key,
        headers=headers,
    )
    server = sessions.get(row, sessions.get("nginx"))
    wait_for_quiet(sessions)
    run_wrk(base_url, exchange, duration_s=warmup_s, **load)
    tries: list[tuple[WrkRun, dict[str, float], dict[str, float], dict | None]] = []
    while len(tries) < max_tries:
        if tries:
            wait_for_quiet(sessions)
        before, started = CpuSnapshot.take(), time.perf_counter()
        with RssSampler(server, interval_s=0.5) as rss:
            run = run_wrk(base_url, exchange, duration_s=duration_s, **load)
        cores, neighbours = CpuSnapshot.take().cores_since(before, time.perf_counter() - started, sessions)
        tries.append((run, cores, neighbours, rss_summary(rss.samples)))
        if cores["other"] <= NOISY_OTHER_CORES:
            break
    run, cores, neighbours, memory = min(tries, key=lambda attempt: attempt[1]["other"])
    return Cell(row, test.key, run, cores, neighbours, len(tries), memory)
