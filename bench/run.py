"""The benchmark's one command: nginx as the upstream, then the same wrk load straight to
nginx, through Tollgate (with and without its ledger) and through LiteLLM's proxy;
Tollgate's start-up and memory; results in bench/out/results.json and bench/results.md.
See bench/README.md.

    .venv/bin/python bench/run.py [--duration 10] [--warmup 2] [--rev HEAD] [--profile auto|always|never]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import threading
import time
import timeit
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import profiling
import proxies
import report
from load import TESTS, WrkRun, measure, run_wrk
from processes import Processes, StartFailed, free_port
from procfs import rss_bytes, session_pids
from proxies import Proxy
from relay_check import RelayMismatch, check_relay
from upstream import Exchange, nginx_config, write_exchanges

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
DIRECT = "direct"
REDIS_URL = "redis://127.0.0.1:6379/0"  # the policies' shared state, for the Redis row
READY_TIMEOUT_S = 120  # LiteLLM takes seconds; a first pip-installed start can take longer


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # SIGTERM and SIGHUP unwind like Ctrl-C does, so `Processes` stops every server.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda number, frame: sys.exit(128 + number))
    logs = OUT / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)

    # What is measured is fixed at the start, should HEAD move or the tree change meanwhile.
    sha = _git("rev-parse", "--verify", f"{args.rev}^{{commit}}") if args.rev else None
    started = time.time()
    command = " ".join([".venv/bin/python bench/run.py", *(sys.argv[1:] if argv is None else argv)])
    results: dict = {
        "started_utc": _utc(started),
        "command": command,
        "settings": _settings(args),
        "machine": _machine(),
        "versions": _versions(sha),
    }
    with Processes(logs) as processes:
        results |= Benchmark(args, processes, logs, sha).run()
    results["elapsed_s"] = round(time.time() - started)
    results["versions"]["litellm"] = results["rows"].get("litellm", {}).get("version")
    results["targets"] = report.targets(results)

    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (BENCH / "results.md").write_text(report.render(results))
    print(report.summary(results))
    print(f"\nwrote {BENCH / 'results.md'} and {OUT / 'results.json'} in {results['elapsed_s']} s")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10, help="seconds measured per cell (default 10)")
    parser.add_argument(
        "--warmup", type=float, default=2, help="seconds of load before each cell, not measured (default 2)"
    )
    parser.add_argument(
        "--max-tries", type=int, default=3, help="measure a cell up to this often while another process is busy"
    )
    parser.add_argument("--startup-runs", type=int, default=5)
    parser.add_argument("--memory-requests", type=int, default=100_000)
    parser.add_argument(
        "--litellm-version", default="1.108.7", help="LiteLLM release for the peer row (default: the issue's)"
    )
    parser.add_argument("--skip-litellm", action="store_true", help="leave out the LiteLLM row")
    parser.add_argument(
        "--rev", help="measure Tollgate as committed at this git revision (e.g. HEAD) instead of the working tree"
    )
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="py-spy Tollgate under load: auto = when a throughput or latency target fails",
    )
    return parser


def _settings(args: argparse.Namespace) -> dict:
    return {
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "max_tries": args.max_tries,
        "startup_runs": args.startup_runs,
        "memory_requests": args.memory_requests,
        "litellm_version": None if args.skip_litellm else args.litellm_version,
        "profile": args.profile,
        "rev": args.rev,
        "tests": [
            {
                "key": test.key,
                "name": test.name,
                "connections": test.connections,
                "wrk_threads": test.threads,
                "check_bodies": test.check_bodies,
            }
            for test in TESTS
        ],
        "pinning": "none",
    }


class Benchmark:
    def __init__(self, args: argparse.Namespace, processes: Processes, logs: Path, sha: str | None) -> None:
        self.args = args
        self.sha = sha  # the commit to measure Tollgate at; None: the working tree
        self.processes = processes
        self.logs = logs
        self.exchanges: dict[str, Exchange] = {}
        # LiteLLM will not start without a master key; every row gets the same header.
        self.api_key = "sk-bench-" + secrets.token_hex(24)
        self.cells: list[dict] = []
        self.rows: dict[str, dict] = {}

    def run(self) -> dict:
        self.exchanges = write_exchanges(OUT)
        upstream_url = self._start_nginx()
        self._measure_row(DIRECT, "nginx, direct", upstream_url)

        source = _export(self.sha) if self.sha else None
        tollgate = proxies.tollgate(REPO, OUT, upstream_url, source)
        self._measure_proxy(tollgate)
        self._measure_tollgate_without_ledger(upstream_url, source)
        self._measure_tollgate_with_postgres(upstream_url, source)
        self._measure_proxy(proxies.tollgate(REPO, OUT, upstream_url, source, variant="no-metrics"))
        self._measure_policies(upstream_url, source)
        if not self.args.skip_litellm:
            self._measure_litellm(upstream_url)

        startup = self._startup(tollgate)
        memory, profile = self._memory_and_profile(tollgate)
        return {"rows": self.rows, "cells": self.cells, "startup": startup, "memory": memory, "profile": profile}

    # --- rows -------------------------------------------------------------------------

    def _start_nginx(self) -> str:
        port = free_port()
        config = nginx_config(OUT, port, self.exchanges)
        prefix = config.parent
        self.processes.start("nginx", ["nginx", "-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log")])
        url = f"http://127.0.0.1:{port}"
        # Ready once it relays the chat answer (connection refused until it listens).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                check_relay(url, self.exchanges["chat"], self.api_key)
                return url
            except OSError:
                time.sleep(0.05)
        raise StartFailed(f"nginx did not start:\n{self.processes.log_tail('nginx')}")

    def _measure_proxy(self, proxy: Proxy) -> None:
        port = free_port()
        try:
            with self._serving(proxy, port) as ready_s:
                self._measure_row(proxy.name, proxy.label, proxy.base_url(port), ready_s=ready_s)
        except (StartFailed, RelayMismatch) as failure:
            self.rows[proxy.name] = {"label": proxy.label, "status": "failed", "reason": str(failure)}

    def _measure_tollgate_without_ledger(self, upstream_url: str, source: Path | None) -> None:
        """What the ledger costs: the same Tollgate with `ledger.enabled: false`, where the
        revision measured has that setting."""
        try:
            proxy = proxies.tollgate(REPO, OUT, upstream_url, source, variant="off")
        except RuntimeError as refused:
            self.rows["tollgate-no-ledger"] = {
                "label": "Tollgate, ledger off",
                "status": "not run",
                "reason": str(refused),
            }
            return
        self._measure_proxy(proxy)

    def _measure_tollgate_with_postgres(self, upstream_url: str, source: Path | None) -> None:
        """The ledger on the local PostgreSQL (a database made for the run, dropped after)."""
        import psycopg

        server = "postgresql://postgres@127.0.0.1:5432"
        database = f"tollgate_bench_{secrets.token_hex(4)}"
        try:
            with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{database}"')
        except psycopg.Error as unavailable:
            self.rows["tollgate-postgres"] = {
                "label": "Tollgate, PostgreSQL ledger",
                "status": "not run",
                "reason": str(unavailable),
            }
            return
        try:
            self._measure_proxy(
                proxies.tollgate(REPO, OUT, upstream_url, source, variant="postgresql", url=f"{server}/{database}")
            )
        finally:
            with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    def _measure_policies(self, upstream_url: str, source: Path | None) -> None:
        """What the policy chain costs with a key, budgets and rate limits on: counters in
        memory, then in the local Redis (its keys removed after)."""
        for variant, url in (("policies-memory", ""), ("policies-redis", REDIS_URL)):
            try:
                proxy = proxies.tollgate(
                    REPO, OUT, upstream_url, source, variant=variant, url=url, api_key=self.api_key
                )
            except RuntimeError as refused:  # a revision without policies refuses the keys' settings
                name, label, _ = proxies.VARIANTS[variant]
                self.rows[name] = {"label": label, "status": "not run", "reason": str(refused)}
                continue
            self._measure_proxy(proxy)

    def _measure_litellm(self, upstream_url: str) -> None:
        label = "LiteLLM proxy"
        try:
            version = proxies.ensure_litellm(OUT, self.args.litellm_version, self.logs / "litellm-install.log")
        except (subprocess.CalledProcessError, RuntimeError) as failure:
            tail = self.processes.log_tail("litellm-install")
            self.rows["litellm"] = {"label": label, "status": "not run", "reason": f"install failed: {failure}\n{tail}"}
            return
        self._measure_proxy(proxies.litellm(OUT, upstream_url, self.api_key))
        self.rows["litellm"]["version"] = version

    def _measure_row(self, name: str, label: str, base_url: str, *, ready_s: float | None = None) -> None:
        checks = [check_relay(base_url, exchange, self.api_key).to_json() for exchange in self.exchanges.values()]
        self.rows[name] = {
            "label": label,
            "status": "measured",
            "ready_s": ready_s and round(ready_s, 3),
            "relay": checks,
        }
        sessions = self.processes.sessions()
        for test in TESTS:
            print(f"{label}: {test.name} …", flush=True)
            cell = measure(
                name,
                base_url,
                self.exchanges[test.exchange],
                test,
                sessions=sessions,
                api_key=self.api_key,
                warmup_s=self.args.warmup,
                duration_s=self.args.duration,
                max_tries=self.args.max_tries,
            )
            self.cells.append(cell.to_json())
            time.sleep(1)  # let the server finish what wrk left in flight

    @contextmanager
    def _serving(self, proxy: Proxy, port: int) -> Iterator[float]:
        """Start `proxy`, yield seconds from spawn to ready, stop it on the way out."""
        started = time.perf_counter()
        self.processes.start(proxy.name, proxy.command(port), env=proxy.env, cwd=proxy.cwd)
        try:
            yield self.processes.wait_until_ready(
                proxy.name, proxy.base_url(port) + proxy.ready_path, READY_TIMEOUT_S, started=started
            )
        finally:
            self.processes.stop(proxy.name)

    # --- Tollgate alone ---------------------------------------------------------------------

    def _startup(self, tollgate: Proxy) -> dict:
        """Spawn to the first 200 from /readyz, a fresh process each time."""
        runs = []
        for _ in range(self.args.startup_runs):
            with self._serving(tollgate, free_port()) as ready_s:
                runs.append(round(ready_s, 3))
        return {"runs_s": runs, "median_s": statistics.median(runs), "max_s": max(runs)}

    def _memory_and_profile(self, tollgate: Proxy) -> tuple[dict, dict | None]:
        port = free_port()
        with self._serving(tollgate, port):
            session = self.processes.sessions()[tollgate.name]
            memory = self._memory(tollgate.base_url(port), session)
            profile = None
            if self.args.profile == "always" or (self.args.profile == "auto" and _misses_speed_target(self.cells)):
                profile = self._profile(tollgate.base_url(port), session)
        return memory, profile

    def _memory(self, base_url: str, session: int) -> dict:
        """RSS of Tollgate's processes, sampled every second while wrk sends at least
        `memory_requests` chat requests at c=64. wrk runs for a duration, not a count,
        so it runs in rounds sized by the rate seen so far (usually two)."""
        time.sleep(1)
        idle = rss_bytes(session_pids(session))
        samples: list[tuple[float, int]] = []
        done = threading.Event()
        started = time.perf_counter()

        def sample() -> None:
            while not done.wait(1.0):
                samples.append((round(time.perf_counter() - started, 1), rss_bytes(session_pids(session))))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        test = next(test for test in TESTS if test.key == "chat_c64")
        wanted = self.args.memory_requests
        print(f"Tollgate: RSS over {wanted:,} chat requests, c={test.connections} …", flush=True)
        runs: list[WrkRun] = []
        try:
            while (sent := sum(run.requests for run in runs)) < wanted:
                rate = sent / (time.perf_counter() - started) if runs else None
                seconds = 10 if not rate else max(2, (wanted - sent) / rate * 1.05)
                runs.append(
                    run_wrk(
                        base_url,
                        self.exchanges["chat"],
                        connections=test.connections,
                        threads=test.threads,
                        check_bodies=test.check_bodies,
                        api_key=self.api_key,
                        duration_s=seconds,
                    )
                )
                if runs[-1].requests == 0:
                    break  # nothing gets through; the errors say why
        finally:
            done.set()
            sampler.join()
        end = rss_bytes(session_pids(session))
        return report.memory_summary(idle, samples, end, runs)

    def _profile(self, base_url: str, session: int) -> dict:
        py_spy = profiling.ensure_py_spy(OUT, self.logs / "py-spy-install.log")
        pid = session  # the session leader is `tollgate serve`, which runs the one worker in-process
        profiles = {}
        for test in TESTS:
            print(f"Tollgate: py-spy during {test.name} …", flush=True)
            output = OUT / f"profile-{test.key}.txt"
            recorder = profiling.start_recording(py_spy, pid, self.args.duration, output)
            run = run_wrk(
                base_url,
                self.exchanges[test.exchange],
                connections=test.connections,
                threads=test.threads,
                check_bodies=test.check_bodies,
                api_key=self.api_key,
                duration_s=self.args.duration,
            )
            _, errors = recorder.communicate(timeout=self.args.duration + 30)
            if recorder.returncode != 0 or not output.exists():
                profiles[test.key] = {"error": errors.decode(errors="replace").strip()[-500:]}
                continue
            profiles[test.key] = {
                "rps_while_sampled": run.rps,
                "file": str(output.relative_to(REPO)),
                **profiling.summarize(output),
            }
        return profiles


def _misses_speed_target(cells: list[dict]) -> bool:
    return any(target["pass"] is False for target in report.speed_targets(cells))


# --- the record: machine and versions --------------------------------------------------------


def _machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?")
    meminfo = Path("/proc/meminfo").read_text().split()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 1024**2, 1),
        "kernel": platform.release(),
        "os": _first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "python_loop_ms": python_loop_ms(),
    }


def python_loop_ms() -> float:
    """The host's speed at pure Python, which Tollgate's own time scales with (nginx and
    wrk much less): the best of five timings of `sum(range(10**6))`. Runs on different
    hosts compare by it; a slower host moves every absolute target."""
    return round(min(timeit.repeat("sum(range(10**6))", number=20, repeat=5)) / 20 * 1000, 1)


def _export(sha: str) -> Path:
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


def _versions(sha: str | None) -> dict:
    python = REPO / ".venv" / "bin" / "python"
    stack = ["uvicorn", "uvloop", "httptools", "starlette", "httpx", "aiohttp"]
    probe = "import sys, importlib.metadata as m; print(sys.version.split()[0], *(m.version(p) for p in sys.argv[1:]))"
    python_version, *library_versions = _first_line([str(python), "-c", probe, *stack]).split()
    changed = "" if sha else _git("status", "--porcelain", "--", "proxy", "providers", "policies", "pyproject.toml")
    return {
        "python": python_version,
        "tollgate_rev": _git("rev-parse", "--short", sha or "HEAD"),
        "tollgate_source": "git archive of that commit" if sha else "working tree",
        "tollgate_uncommitted": changed.splitlines() if changed else [],
        "tollgate_stack": dict(zip(stack, library_versions, strict=True)),
        "nginx": _first_line(["nginx", "-v"]).removeprefix("nginx version: "),
        "wrk": _first_line(["wrk", "-v"]).split(" [")[0],
    }


def _first_line(argv: list[str]) -> str:
    """The first line a command prints, on stdout or (nginx -v) stderr."""
    done = subprocess.run(argv, capture_output=True, text=True)
    return ((done.stdout or done.stderr).strip().splitlines() or [""])[0]


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout.strip()


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


if __name__ == "__main__":
    sys.exit(main())
