"""Where Tollgate's CPU goes under load: py-spy samples the running process and its
ledger writer (py-spy from a tools venv under bench/out/, never the project's); the
collapsed stacks it writes are kept in bench/profiles/ with a flame graph of them, given
to the parts of a request (breakdown.py) and summed into the frames that hold the most."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import flamegraph
from breakdown import breakdown, read_stacks, request_path, table
from load import WrkRun
from procfs import session_cpu_by_pid

PY_SPY_VERSION = "0.4.3"
BENCH = Path(__file__).resolve().parent
PROFILES = BENCH / "profiles"  # committed: the stacks and flame graph of each test
OUT = BENCH / "out"


def ensure_py_spy(out: Path, log: Path) -> Path:
    venv = out / "tools-venv"
    py_spy = venv / "bin" / "py-spy"
    if not py_spy.exists():
        with log.open("ab") as sink:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=sink, stderr=sink)
            pip = [str(venv / "bin" / "pip"), "install", "--quiet", f"py-spy=={PY_SPY_VERSION}"]
            subprocess.run(pip, check=True, stdout=sink, stderr=sink)
    return py_spy


def start_recording(py_spy: Path, pid: int, output: Path, *, lines: bool = False) -> subprocess.Popen:
    """Sample `pid` and its children (the ledger writer) into collapsed stacks, by
    function (by line with `lines`), until SIGINT. Non-blocking: the process is not paused for
    each sample, so the profile costs the proxy little throughput."""
    argv = [
        str(py_spy),
        "record",
        "--pid",
        str(pid),
        "--rate",
        "250",
        "--format",
        "raw",
        "--output",
        str(output),
        "--nonblocking",
        "--subprocesses",
    ]
    if not lines:
        argv.append("--nolineno")
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# Frames from `tollgate serve` down to the event loop, from a thread's start to its
# target, or from a spawned process's start to its target: on every stack of their thread
# or process, so they say nothing. py-spy names files relative to sys.path: proxy/cli.py,
# uvicorn/server.py, asyncio/runners.py, threading.py, multiprocessing/spawn.py.
_ENTRY_FRAMES = frozenset(
    (
        "<module> (tollgate)",
        "main (proxy/cli.py)",
        "_serve (proxy/cli.py)",
        "serve (proxy/runtime/server.py)",
        "Server.run (uvicorn/server.py)",
        "asyncio_run (uvicorn/_compat.py)",
        "Runner.run (asyncio/runners.py)",
        "Thread._bootstrap (threading.py)",
        "Thread._bootstrap_inner (threading.py)",
        "Thread.run (threading.py)",
        "<module> (<string>)",
        "spawn_main (multiprocessing/spawn.py)",
        "_main (multiprocessing/spawn.py)",
        "BaseProcess._bootstrap (multiprocessing/process.py)",
        "BaseProcess.run (multiprocessing/process.py)",
    )
)


def profile_under_load(py_spy: Path, session: int, name: str, load: Callable[[], WrkRun], key: str) -> dict:
    """py-spy on a session's leader and its children while `load()` runs wrk; the stacks
    and their flame graph go to bench/profiles/<key>.*, with the CPU a request took
    meanwhile (all of the session's processes, from /proc)."""
    print(f"Tollgate: py-spy during {name} …", flush=True)
    raw = OUT / f"profile-{key}.txt"
    raw.unlink(missing_ok=True)
    recorder = start_recording(py_spy, session, raw)
    time.sleep(0.5)  # py-spy attaches
    before = session_cpu_by_pid(session)
    run = load()
    after = session_cpu_by_pid(session)
    recorder.send_signal(signal.SIGINT)  # py-spy writes what it sampled and exits
    _, errors = recorder.communicate(timeout=30)
    if recorder.returncode != 0 or not raw.exists():
        return {"error": errors.decode(errors="replace").strip()[-500:]}
    spent = {pid: cpu_s - before.get(pid, 0.0) for pid, cpu_s in after.items()}
    per_request = 1e6 / max(run.requests, 1)
    main_us = spent.get(session, 0.0) * per_request  # the leader: `tollgate serve` and its one worker
    children_us = (sum(spent.values()) - spent.get(session, 0.0)) * per_request  # the ledger writer
    title = (
        f"Tollgate's request path, {name}: {run.rps:,.0f} req/s while sampled, {main_us:,.0f} µs of CPU "
        f"per request (the ledger writer's {children_us:,.0f} µs not drawn)"
    )
    return {
        "test": name,
        "rps_while_sampled": run.rps,
        "requests": run.requests,
        "main_cpu_us_per_request": round(main_us, 1),
        "children_cpu_us_per_request": round(children_us, 1),
        "svg": str((PROFILES / f"{key}.svg").relative_to(BENCH.parent)),
        "breakdown": keep(raw, PROFILES, key, title, main_us, children_us),
        **summarize(raw),
    }


def write_record(results: dict) -> None:
    """bench/profiles/profiles.json: what `bench/breakdown.py` needs to print the tables
    again from the committed stacks, and where they came from."""
    recorded = {
        "recorded_utc": results["started_utc"],
        "command": results["command"],
        "tollgate_rev": results["versions"]["tollgate_rev"],
        "python_loop_ms": results["machine"]["python_loop_ms"],
        "load_average_start": results["machine"]["load_average_start"],
        "profiles": {
            key: {
                field: profile[field]
                for field in (
                    "test",
                    "samples",
                    "main_cpu_us_per_request",
                    "children_cpu_us_per_request",
                    "rps_while_sampled",
                )
            }
            for key, profile in results["profile"].items()
            if "error" not in profile
        },
    }
    (PROFILES / "profiles.json").write_text(json.dumps(recorded, indent=2) + "\n")


def keep(raw: Path, folder: Path, key: str, title: str, main_us: float, children_us: float) -> list[dict]:
    """Keep a recording in `folder` as `<key>.txt` (its stacks, sorted, the writer's too)
    and `<key>.svg` (the request path's flame graph); return its breakdown into the parts
    of a request."""
    folder.mkdir(parents=True, exist_ok=True)
    stacks = read_stacks(raw)
    lines = sorted(f"{';'.join(frames)} {count}" for frames, count in stacks.items())
    (folder / f"{key}.txt").write_text("\n".join(lines) + "\n")
    (folder / f"{key}.svg").write_text(flamegraph.render(request_path(stacks), title))
    return breakdown(stacks, main_us, children_us)


def summarize(collapsed: Path, limit: int = 10) -> dict:
    """Shares of the main process's samples by the frame running (self), and by every frame on the stack
    (inclusive, each frame counted once per stack, the frames every stack of a process
    or thread starts with left out). Time inside uvloop's C code shows as the Python
    frame that entered it: `Runner.run` for the loop itself (polling, socket reads and writes)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    stacks = request_path(read_stacks(collapsed))
    for frames, count in stacks.items():
        own[frames[-1]] += count
        for frame in set(frames) - _ENTRY_FRAMES:
            inclusive[frame] += count
    total = sum(stacks.values()) or 1

    def shares(counter: Counter[str]) -> list[list]:
        return [[name, round(100 * count / total, 1)] for name, count in counter.most_common(limit)]

    return {"samples": sum(stacks.values()), "self": shares(own), "inclusive": shares(inclusive)}


def section(profile: dict | None) -> str:
    if not profile:
        return ""
    lines = [
        "## Where a request's CPU goes",
        "",
        "py-spy sampled Tollgate (non-blocking, CPU-active samples only) while wrk drove each test, on a fresh "
        "Tollgate after the memory run. Each sample of the main process goes to the part of a request that the "
        "innermost claimed frame on its stack belongs to (bench/breakdown.py says which files each part claims); "
        "a part's *µs per request* is its share of those samples times the CPU time the main process spent per "
        "request meanwhile (from `/proc`). The ledger writer, a child process, shows its own CPU time per request. "
        "Flame graphs of the main process, coloured by the same parts: `bench/profiles/*.svg`; the stacks beside "
        "them (`.venv/bin/python bench/breakdown.py` prints these tables again from them). Sampling costs some "
        "throughput, so the req/s while sampled is lower than the table's.",
    ]
    for found in profile.values():
        if "error" in found:
            lines += ["", f"py-spy failed: {found['error']}"]
            continue
        lines += [
            "",
            f"### {found['test']}",
            "",
            f"{found['samples']:,} samples; {found['rps_while_sampled']:,.0f} req/s while sampled; "
            f"{found['main_cpu_us_per_request']:,.0f} µs of CPU per request in the main process, "
            f"{found['children_cpu_us_per_request']:,.0f} in the ledger writer. Flame graph: `{found['svg']}`.",
            "",
            table(found["breakdown"]),
        ]
        for title, field in (("self", "self"), ("inclusive", "inclusive")):
            lines += ["", f"| % | {title} |", "| ---: | --- |"]
            lines += [f"| {share:.1f} | `{frame}` |" for frame, share in found[field]]
    return "\n".join(lines)
