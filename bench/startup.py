"""Tollgate's start-up to ready and its resident memory, alone: what run.py measures for
them (same config, same bytecode compile, same spawn and poll), in a minute rather than
the whole run. Start-up: spawn → first 200 from `GET /readyz`, a fresh process each time,
median of `--runs`; then the first chat completion's time (through to nginx) against the
second's, as what was left for the first request to do shows there. RSS: each process of
the session (the server, the ledger writer) idle after ready and, with
`--memory-requests N`, after N chat requests at c=64 against nginx (memory.py's run).

    .venv/bin/python bench/startup.py [--runs 7] [--rev REV] [--memory-requests 100000]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import time

import proxies
import record
from load import TESTS
from memory import memory_under_load
from processes import Processes, free_port
from procfs import processes as live_processes
from procfs import rss_bytes, session_pids
from relay_check import check_relay
from run import OUT, REPO, Benchmark
from upstream import write_exchanges

_MB = 1024 * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="starts measured (default 7)")
    parser.add_argument("--rev", help="measure Tollgate as committed at this revision")
    parser.add_argument("--memory-requests", type=int, default=0, help="then RSS after this many chat requests")
    args = parser.parse_args()
    logs = OUT / "logs-startup"
    logs.mkdir(parents=True, exist_ok=True)
    source = record.export_rev(args.rev) if args.rev else None
    with Processes(logs) as processes:
        bench = Benchmark(argparse.Namespace(startup_runs=args.runs), processes, logs, None)
        bench.api_key = "sk-bench-" + secrets.token_hex(24)
        bench.exchanges = write_exchanges(OUT)
        upstream_url = bench._start_nginx()
        tollgate = proxies.tollgate(REPO, OUT, upstream_url, bench.api_key, source)
        runs, cpu, first, second = [], [], [], []
        for _ in range(args.runs):
            port = free_port()
            with bench._serving(tollgate, port) as ready_s:
                runs.append(ready_s)
                # The server's own CPU until ready: less moved by others' load than the wall time.
                cpu.append(_main_thread_cpu_s(processes.sessions()[tollgate.name]))
                for times in (first, second):
                    started = time.perf_counter()
                    check_relay(tollgate.base_url(port), bench.exchanges["chat"], bench.api_key)
                    times.append(time.perf_counter() - started)
                time.sleep(0.3)  # a pause between starts, as the benchmark's stop and restart give
        print(
            f"start-up to ready: median {statistics.median(runs):.3f} s, min {min(runs):.3f}, max {max(runs):.3f} "
            f"({', '.join(f'{run:.3f}' for run in runs)}); its main thread's CPU until then: median "
            f"{statistics.median(cpu):.3f} s"
        )
        print(
            f"first chat completion after ready: median {statistics.median(first) * 1e3:.1f} ms, "
            f"the second {statistics.median(second) * 1e3:.1f} ms"
        )
        port = free_port()
        with bench._serving(tollgate, port):
            session = processes.sessions()[tollgate.name]
            time.sleep(1)
            print(f"idle after ready: {_by_process(session)}")
            if args.memory_requests:
                chat_c64 = next(test for test in TESTS if test.key == "chat_c64")
                url = tollgate.base_url(port)
                memory = memory_under_load(session, args.memory_requests, lambda s: bench._wrk(url, chat_c64, s))
                print(
                    f"{memory['requests']:,} chat requests at c=64 ({memory['rps']:,.0f} req/s, {memory['errors']} "
                    f"errors): start {memory['start_mb']} MB, after the first quarter "
                    f"{memory['after_first_quarter_mb']} MB, max {memory['max_mb']} MB, end {memory['end_mb']} MB, "
                    f"{'flat' if memory['flat'] else 'NOT flat'} ({memory['growth_after_first_quarter_mb']:+} MB)"
                )
                print(f"after the load: {_by_process(session)}")
    return 0


def _main_thread_cpu_s(pid: int) -> float:
    """CPU time of the process's main thread, in ns resolution (sched(7): schedstat)."""
    with open(f"/proc/{pid}/schedstat") as file:
        return int(file.read().split()[0]) / 1e9


def _by_process(session: int) -> str:
    pids = session_pids(session)
    names = live_processes()
    parts = [f"{'server' if pid == session else names[pid].name} {rss_bytes([pid]) / _MB:.1f}" for pid in pids]
    return f"{rss_bytes(pids) / _MB:.1f} MB ({', '.join(parts)})"


if __name__ == "__main__":
    sys.exit(main())
