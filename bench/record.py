"""What a run measured, and on what: the machine (with its speed at pure Python), the
versions of every party, and the Tollgate commit (exported whole when `--rev` asks)."""

from __future__ import annotations

import io
import os
import platform
import shutil
import subprocess
import tarfile
import timeit
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?")
    meminfo = Path("/proc/meminfo").read_text().split()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 1024**2, 1),
        "kernel": platform.release(),
        "os": first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "python_loop_ms": python_loop_ms(),
        "load_average_start": load_average(),
    }


def load_average() -> list[float]:
    """1, 5 and 15 minutes: how busy the machine was, others' work included."""
    return [round(value, 1) for value in os.getloadavg()]


def python_loop_ms() -> float:
    """The host's speed at pure Python, which Tollgate's own time scales with (nginx and
    wrk much less): the best of five timings of `sum(range(10**6))`. Runs on different
    hosts compare by it; a slower host moves every absolute target."""
    return round(min(timeit.repeat("sum(range(10**6))", number=20, repeat=5)) / 20 * 1000, 1)


def export(sha: str) -> Path:
    """The project's files at commit `sha`, in bench/out/: another engineer's edits to the
    working tree cannot change what is measured halfway through a run."""
    target = OUT / f"tollgate-{sha[:12]}"
    if not target.exists():
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", sha], capture_output=True, check=True
        )
        staging = target.with_suffix(".partial")
        shutil.rmtree(staging, ignore_errors=True)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(staging, filter="data")
        staging.rename(target)
    return target


def versions(sha: str | None) -> dict:
    python = REPO / ".venv" / "bin" / "python"
    stack = ["uvicorn", "uvloop", "httptools", "starlette", "httpx", "aiohttp"]
    probe = "import sys, importlib.metadata as m; print(sys.version.split()[0], *(m.version(p) for p in sys.argv[1:]))"
    python_version, *library_versions = first_line([str(python), "-c", probe, *stack]).split()
    changed = "" if sha else git("status", "--porcelain", "--", "proxy", "providers", "policies", "pyproject.toml")
    return {
        "python": python_version,
        "tollgate_rev": git("rev-parse", "--short", sha or "HEAD"),
        "tollgate_source": "git archive of that commit" if sha else "working tree",
        "tollgate_uncommitted": changed.splitlines() if changed else [],
        "tollgate_stack": dict(zip(stack, library_versions, strict=True)),
        "nginx": first_line(["nginx", "-v"]).removeprefix("nginx version: "),
        "wrk": first_line(["wrk", "-v"]).split(" [")[0],
        "node": first_line(["node", "--version"]).removeprefix("v"),
    }


def first_line(argv: list[str]) -> str:
    """The first line a command prints, on stdout or (nginx -v) stderr."""
    done = subprocess.run(argv, capture_output=True, text=True)
    return ((done.stdout or done.stderr).strip().splitlines() or [""])[0]


def export_rev(rev: str) -> Path:
    """`export` of the commit that `rev` (a branch, tag or sha) names now."""
    return export(git("rev-parse", "--verify", f"{rev}^{{commit}}"))


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout.strip()
