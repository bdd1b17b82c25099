"""The benchmark's one command: nginx as the upstream, then the same wrk load straight to
nginx and through the bare Python relay, Tollgate (one worker, and two at chat c=64),
Portkey's gateway and LiteLLM's proxy; start-up, Tollgate's memory and its profile;
results in bench/out/results.json and bench/results.md, profiles in bench/profiles/.
See bench/README.md.

    .venv/bin/python bench/run.py [--duration 10] [--warmup 2] [--rev HEAD] [--profile auto|always|never]
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import peers
import profiling
import proxies
import record
import report
import targets
from load import TESTS, Test, WrkRun, measure, run_wrk
from memory import memory_under_load
from processes import Processes, StartFailed, free_port
from proxies import Proxy, StoreUnavailable
from relay_check import RelayMismatch, check_relay
from upstream import Exchange, nginx_config, write_exchanges

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
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
    sha = record.git("rev-parse", "--verify", f"{args.rev}^{{commit}}") if args.rev else None
    started = time.time()
    command = " ".join([".venv/bin/python bench/run.py", *(sys.argv[1:] if argv is None else argv)])
    results: dict = {
        "started_utc": _utc(started),
        "command": command,
        "settings": _settings(args),
        "machine": record.machine(),
        "versions": record.versions(sha),
    }
    with Processes(logs) as processes:
        results |= Benchmark(args, processes, logs, sha).run()
    results["elapsed_s"] = round(time.time() - started)
    results["machine"]["load_average_end"] = record.load_average()
    for peer in (targets.PORTKEY, targets.LITELLM):
        results["versions"][peer] = results["rows"].get(peer, {}).get("version")
    results["targets"] = targets.targets(results)

    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (BENCH / "results.md").write_text(report.render(results))
    if results.get("profile"):
        profiling.write_record(results)
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
        "--portkey-version", default="1.15", help="@portkey-ai/gateway release for the peer row (default: the issue's)"
    )
    parser.add_argument("--skip-portkey", action="store_true", help="leave out the Portkey row")
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also measure Tollgate with one part changed (ledger off or in PostgreSQL, metrics off, access log "
        "off, no keys, counters in Redis), to show what each part costs",
    )
    parser.add_argument(
        "--rev", help="measure Tollgate as committed at this git revision (e.g. HEAD) instead of the working tree"
    )
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="py-spy Tollgate under load into bench/profiles/: auto = when a throughput or latency target fails",
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
        "portkey_version": None if args.skip_portkey else args.portkey_version,
        "variants": args.variants,
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
        # One key for every row: Tollgate's client key, LiteLLM's master key; the others pass it on.
        self.api_key = "sk-bench-" + secrets.token_hex(24)
        self.cells: list[dict] = []
        self.rows: dict[str, dict] = {}
        self.startup: dict[str, dict] = {}

    def run(self) -> dict:
        self.exchanges = write_exchanges(OUT)
        upstream_url = self._start_nginx()
        self._measure_row(targets.DIRECT, "nginx, direct", upstream_url)

        # The relay and Tollgate one after the other: their ratio is the run's main figure.
        relay = peers.relay(REPO, upstream_url)
        self._measure_proxy(relay)
        source = record.export(self.sha) if self.sha else None
        tollgate = proxies.tollgate(REPO, OUT, upstream_url, self.api_key, source)
        self._measure_proxy(tollgate)
        chat_c64 = tuple(test for test in TESTS if test.key == "chat_c64")
        self._measure_proxy(proxies.tollgate(REPO, OUT, upstream_url, self.api_key, source, workers=2), chat_c64)
        portkey = None if self.args.skip_portkey else self._measure_portkey(upstream_url)
        if not self.args.skip_litellm:
            self._measure_litellm(upstream_url)
        if self.args.variants:
            self._measure_variants(upstream_url, source)

        for proxy in (tollgate, relay, portkey):
            if proxy is not None and self.rows.get(proxy.name, {}).get("status") == "measured":
                self.startup[proxy.name] = self._startup(proxy)
        memory, profile = self._memory_and_profile(tollgate)
        return {
            "rows": self.rows,
            "cells": self.cells,
            "startup": self.startup,
            "memory": memory,
            "profile": profile,
        }

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

    def _measure_proxy(self, proxy: Proxy, tests: tuple[Test, ...] = TESTS) -> None:
        port = free_port()
        try:
            with self._serving(proxy, port) as ready_s:
                self._measure_row(
                    proxy.name, proxy.label, proxy.base_url(port), ready_s=ready_s, headers=proxy.headers, tests=tests
                )
        except (StartFailed, RelayMismatch) as failure:
            self.rows[proxy.name] = {"label": proxy.label, "status": "failed", "reason": str(failure)}

    def _measure_portkey(self, upstream_url: str) -> Proxy | None:
        label = "Portkey gateway"
        try:
            version = peers.ensure_portkey(OUT, self.args.portkey_version, self.logs / "portkey-install.log")
        except (subprocess.CalledProcessError, RuntimeError, OSError) as failure:
            tail = self.processes.log_tail("portkey-install")
            self.rows["portkey"] = {"label": label, "status": "not run", "reason": f"install failed: {failure}\n{tail}"}
            return None
        proxy = peers.portkey(OUT, upstream_url)
        self._measure_proxy(proxy)
        self.rows["portkey"]["version"] = version
        return proxy

    def _measure_litellm(self, upstream_url: str) -> None:
        label = "LiteLLM proxy"
        try:
            version = peers.ensure_litellm(OUT, self.args.litellm_version, self.logs / "litellm-install.log")
        except (subprocess.CalledProcessError, RuntimeError) as failure:
            tail = self.processes.log_tail("litellm-install")
            self.rows["litellm"] = {"label": label, "status": "not run", "reason": f"install failed: {failure}\n{tail}"}
            return
        self._measure_proxy(peers.litellm(OUT, upstream_url, self.api_key))
        self.rows["litellm"]["version"] = version

    def _measure_variants(self, upstream_url: str, source: Path | None) -> None:
        """Tollgate with one part changed each; an older revision may refuse a setting."""
        for variant in proxies.VARIANTS.values():
            try:
                with proxies.variant_store(variant) as url:
                    proxy = proxies.tollgate(REPO, OUT, upstream_url, self.api_key, source, variant=variant, url=url)
                    self._measure_proxy(proxy)
            except (RuntimeError, StoreUnavailable) as refused:
                self.rows[variant.row] = {"label": variant.label, "status": "not run", "reason": str(refused)}

    def _measure_row(
        self,
        name: str,
        label: str,
        base_url: str,
        *,
        ready_s: float | None = None,
        headers: dict[str, str] | None = None,
        tests: tuple[Test, ...] = TESTS,
    ) -> None:
        checks = [check_relay(base_url, exchange, self.api_key, headers) for exchange in self.exchanges.values()]
        self.rows[name] = {
            "label": label,
            "status": "measured",
            "ready_s": ready_s and round(ready_s, 3),
            "relay": [check.to_json() for check in checks],
        }
        sessions = self.processes.sessions()
        for test in tests:
            print(f"{label}: {test.name} …", flush=True)
            cell = measure(
                name,
                base_url,
                self.exchanges[test.exchange],
                test,
                sessions=sessions,
                api_key=self.api_key,
                headers=headers,
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

    # --- start-up, and Tollgate alone -----------------------------------------------------------

    def _startup(self, proxy: Proxy) -> dict:
        """Spawn to the first 200 from the ready path, a fresh process each time."""
        print(f"{proxy.label}: start-up × {self.args.startup_runs} …", flush=True)
        runs = []
        for _ in range(self.args.startup_runs):
            with self._serving(proxy, free_port()) as ready_s:
                runs.append(round(ready_s, 3))
        return {"runs_s": runs, "median_s": statistics.median(runs), "max_s": max(runs)}

    def _memory_and_profile(self, tollgate: Proxy) -> tuple[dict | None, dict | None]:
        if self.rows.get(tollgate.name, {}).get("status") != "measured":
            return None, None
        port = free_port()
        with self._serving(tollgate, port):
            session, base_url = self.processes.sessions()[tollgate.name], tollgate.base_url(port)
            chat_c64 = next(test for test in TESTS if test.key == "chat_c64")
            print(f"Tollgate: RSS over {self.args.memory_requests:,} chat requests, c=64 …", flush=True)
            memory = memory_under_load(
                session, self.args.memory_requests, lambda seconds: self._wrk(base_url, chat_c64, seconds)
            )
            profile = None
            speed_missed = any(target["pass"] is False for target in targets.speed_targets(self.cells))
            if self.args.profile == "always" or (self.args.profile == "auto" and speed_missed):
                py_spy = profiling.ensure_py_spy(OUT, self.logs / "py-spy-install.log")
                # The session leader is `tollgate serve`, which runs the one worker in-process.
                profile = {
                    test.key: profiling.profile_under_load(
                        py_spy, session, test.name, partial(self._wrk, base_url, test, self.args.duration), test.key
                    )
                    for test in TESTS
                }
        return memory, profile

    def _wrk(self, base_url: str, test: Test, seconds: float) -> WrkRun:
        return run_wrk(
            base_url,
            self.exchanges[test.exchange],
            connections=test.connections,
            threads=test.threads,
            check_bodies=test.check_bodies,
            api_key=self.api_key,
            duration_s=seconds,
        )


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


if __name__ == "__main__":
    sys.exit(main())
