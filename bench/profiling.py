"""Where Tollgate's CPU goes under load: py-spy samples the running process (from a
tools venv under bench/out/, never the project's), and the collapsed stacks it writes
are summed into the frames that hold the most samples."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

PY_SPY_VERSION = "0.4.3"


def ensure_py_spy(out: Path, log: Path) -> Path:
    venv = out / "tools-venv"
    py_spy = venv / "bin" / "py-spy"
    if not py_spy.exists():
        with log.open("ab") as sink:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=sink, stderr=sink)
            pip = [str(venv / "bin" / "pip"), "install", "--quiet", f"py-spy=={PY_SPY_VERSION}"]
            subprocess.run(pip, check=True, stdout=sink, stderr=sink)
    return py_spy


def start_recording(py_spy: Path, pid: int, seconds: float, output: Path) -> subprocess.Popen:
    """Sample `pid` for `seconds` into collapsed stacks. Non-blocking: the process is not
    paused for each sample, so the profile costs the proxy little throughput."""
    argv = [
        str(py_spy),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(round(seconds)),
        "--rate",
        "250",
        "--format",
        "raw",
        "--output",
        str(output),
        "--nonblocking",
    ]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# Frames from `tollgate serve` down to the event loop, or from a thread's start to its
# target: on every stack of their thread, so they say nothing. py-spy names files relative
# to sys.path: proxy/cli.py, uvicorn/server.py, asyncio/runners.py, threading.py.
_ENTRY_FRAMES = (
    "<module> (tollgate)",
    "main (proxy/cli.py)",
    "_serve (proxy/cli.py)",
    "serve (proxy/server.py)",
    "Server.run (uvicorn/server.py)",
    "asyncio_run (uvicorn/_compat.py)",
    "Runner.run (asyncio/runners.py)",
    "Thread._bootstrap (threading.py)",
    "Thread._bootstrap_inner (threading.py)",
    "Thread.run (threading.py)",
)


def summarize(collapsed: Path, limit: int = 10) -> dict:
    """Shares of samples: by the frame running (self), by every frame on the stack
    (inclusive, each frame counted once per stack, start-up frames left out), and by the
    package running, and by thread. Time inside uvloop's C code shows as the Python frame
    that entered it: `Runner.run` for the loop itself (polling, socket reads and writes)."""
    own: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = [
            _LINE.sub(")", frame)
            for frame in stack.split(";")
            if frame and not frame.startswith(("process ", "thread "))
        ]
        # A sample with no Python frame: the thread was inside C code (uvloop) between callbacks.
        frames = frames or [_NO_PYTHON]
        count = int(count_text)
        total += count
        own[frames[-1]] += count
        packages[_package(frames[-1])] += count
        threads[_thread(frames)] += count
        for frame in set(frames) - set(_ENTRY_FRAMES):
            inclusive[frame] += count

    def shares(counter: Counter[str]) -> list[list]:
        return [[name, round(100 * count / total, 1)] for name, count in counter.most_common(limit)]

    return {
        "samples": total,
        "threads": shares(threads),
        "self": shares(own),
        "inclusive": shares(inclusive),
        "packages": shares(packages),
    }


_NO_PYTHON = "(no Python frame)"
_LINE = re.compile(r":\d+\)$")  # 'send (httpx/_client.py:1629)' → 'send (httpx/_client.py)'


def _thread(frames: list[str]) -> str:
    """Which thread a stack ran on, told by where it starts: a `threading` thread starts in
    threading.py's bootstrap frames, named here by its target; anything else is the main
    thread's event loop (uvloop calls callbacks from C, so their stacks start mid-way)."""
    if frames[0].endswith("(threading.py)"):
        target = next((frame for frame in frames if not frame.endswith("(threading.py)")), "?")
        return f"thread running {target}"
    return "main thread (event loop)"


def _package(frame: str) -> str:
    """'send (httpx/_client.py)' → 'httpx'; a module outside a package is named by its file."""
    if frame == _NO_PYTHON:
        return "native"
    path = frame[frame.rfind("(") + 1 : -1]
    return path.split("/", 1)[0]
