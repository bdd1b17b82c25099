"""A quick A/B for work on Tollgate's speed: nginx, then the bare relay and Tollgate
(the working tree, or `--rev`) measured one after the other on the chosen tests, with
each Tollgate figure over the relay's and the CPU each spent per answer. Not the
benchmark (run.py is): no peers, no memory run, one try per cell.

    .venv/bin/python bench/quick.py [--tests chat_c64,chat_c1,image_c16] [--duration 5] [--rev HEAD] [--against REV]
        [--variants tollgate-no-ledger,...] [--wakeups]
"""

from __future__ import annotations

import argparse
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import replace

import load
import peers
import profiling
import proxies
import record
from breakdown import table
from load import TESTS, measure
from processes import Processes, free_port
from procfs import session_cpu_by_pid
from run import OUT, REPO, Benchmark
from upstream import write_exchanges


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", default="chat_c64,chat_c1,image_c16", help="comma-separated test keys")
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--rev", help="measure Tollgate as committed at this revision")
    parser.add_argument("--against", help="also measure Tollgate at this revision, before the working tree")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--quiet-wait", type=float, default=3, help="at most this long waiting for a quiet second")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy Tollgate during each test, into bench/out/quick-profiles/"
    )
    parser.add_argument("--lines", action="store_true", help="with --profile: by line, not by function")
    parser.add_argument(
        "--wakeups",
        action="store_true",
        help="also count, machine-wide, the scheduler's wake-ups and the interrupts between CPUs per answer"
        " (perf, from Debian's linux-perf)",
    )
    parser.add_argument("--no-relay", action="store_true", help="Tollgate only")
    parser.add_argument(
        "--variants", default="", help="also measure these variants of the working tree (bench/proxies.py VARIANTS)"
    )
    args = parser.parse_args()
    load.wait_for_quiet.__defaults__ = (args.quiet_wait,)
    tests = tuple(test for test in TESTS if test.key in args.tests.split(","))
    logs = OUT / "logs-quick"
    logs.mkdir(parents=True, exist_ok=True)
    with Processes(logs) as processes:
        bench = Benchmark(argparse.Namespace(warmup=args.warmup, duration=args.duration), processes, logs, None)
        bench.api_key = "sk-bench-" + secrets.token_hex(24)
        bench.exchanges = write_exchanges(OUT)
        upstream_url = bench._start_nginx()
        source = _source(args.rev)
        rows = [] if args.no_relay else [lambda: peers.relay(REPO, upstream_url)]
        if args.against:
            before = _source(args.against)
            rows.append(
                lambda: replace(
                    proxies.tollgate(REPO, OUT, upstream_url, bench.api_key, before, workers=args.workers),
                    name=f"tollgate@{args.against}",
                )
            )
        rows.append(lambda: proxies.tollgate(REPO, OUT, upstream_url, bench.api_key, source, workers=args.workers))
        for row in filter(None, args.variants.split(",")):
            variant = proxies.VARIANTS[row]
            rows.append(
                lambda variant=variant: replace(
                    proxies.tollgate(REPO, OUT, upstream_url, bench.api_key, variant=variant, workers=args.workers),
                    name=variant.row,
                )
            )
        found: dict[tuple[str, str], dict] = {}
        for make in rows:
            proxy = make()  # each Tollgate's config and state made just before it runs
            port = free_port()
            with bench._serving(proxy, port):
                sessions = processes.sessions()
                for test in tests:
                    cell = measure(
                        proxy.name,
                        proxy.base_url(port),
                        bench.exchanges[test.exchange],
                        test,
                        sessions=sessions,
                        api_key=bench.api_key,
                        warmup_s=args.warmup,
                        duration_s=args.duration,
                        max_tries=1,
                    ).to_json()
                    found[proxy.name, test.key] = cell
                    if args.wakeups:
                        cell["wakeups"] = _wakeups(bench, proxy.base_url(port), test, args.duration)
                    if args.profile and proxy.name == "tollgate":
                        _profile(
                            bench, proxy, port, test, processes.sessions()[proxy.name], args.duration, logs, args.lines
                        )
        for test in tests:
            relay = found.get(("relay", test.key))
            for (row, key), cell in found.items():
                if key != test.key:
                    continue
                cpu_us = cell["cores"][row] / cell["rps"] * 1e6 if cell["rps"] else 0
                ratio = f" {cell['rps'] / relay['rps']:.3f}x relay" if relay and row != "relay" else ""
                wakeups = cell.get("wakeups")
                woken = f" wake-ups {wakeups[0]:.2f} IPIs {wakeups[1]:.2f} /req" if wakeups else ""
                print(
                    f"{test.key:10} {row:22} {cell['rps']:8,.0f} req/s p50 {cell['p50_ms']:6.2f} ms"
                    f" cpu {cpu_us:6,.0f} us/req errors {cell['errors']} other {cell['cores']['other']:.2f}"
                    f"{ratio}{woken}"
                )
    return 0


def _source(rev: str | None):
    return record.export_rev(rev) if rev else None


def _wakeups(bench: Benchmark, base_url: str, test, duration_s: float) -> tuple[float, float]:
    """Machine-wide, per answer while wrk drives `test`: tasks woken by the scheduler, and
    interrupts sent from one CPU to another (most of them to wake a sleeping one)."""
    counts = OUT / "perf-stat.csv"
    events = ("sched:sched_wakeup", "ipi:ipi_send_cpu")
    perf = subprocess.Popen(
        ["perf", "stat", "-a", "-x,", "-e", ",".join(events), "-o", str(counts), "sleep", str(duration_s)],
        stderr=subprocess.DEVNULL,
    )
    run = bench._wrk(base_url, test, duration_s)
    perf.wait()
    found = {}
    for line in counts.read_text().splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[0].isdigit():
            found[fields[2]] = int(fields[0])
    answers = max(run.requests, 1)
    return found.get(events[0], 0) / answers, found.get(events[1], 0) / answers


def _profile(
    bench: Benchmark, proxy, port: int, test, session: int, duration_s: float, logs, lines: bool = False
) -> None:
    """py-spy while wrk drives `test`; the breakdown into parts printed, the stacks and
    flame graph kept in bench/out/quick-profiles/."""
    py_spy = profiling.ensure_py_spy(OUT, logs / "py-spy-install.log")
    raw = OUT / f"quick-profile-{test.key}.txt"
    raw.unlink(missing_ok=True)
    recorder = profiling.start_recording(py_spy, session, raw, lines=lines)
    time.sleep(0.5)
    before = session_cpu_by_pid(session)
    run = bench._wrk(proxy.base_url(port), test, duration_s)
    after = session_cpu_by_pid(session)
    recorder.send_signal(signal.SIGINT)
    recorder.communicate(timeout=30)
    spent = {pid: cpu_s - before.get(pid, 0.0) for pid, cpu_s in after.items()}
    per_request = 1e6 / max(run.requests, 1)
    main_us = spent.get(session, 0.0) * per_request
    children_us = (sum(spent.values()) - spent.get(session, 0.0)) * per_request
    title = f"quick profile, {test.name}: {run.rps:,.0f} req/s, {main_us:,.0f} us/req"
    rows = profiling.keep(raw, OUT / "quick-profiles", test.key, title, main_us, children_us)
    print(f"\n{title}\n{table(rows)}")
    summary = profiling.summarize(raw, limit=25)
    print("\n".join(f"{share:5.1f} {name}" for name, share in summary["self"]))


if __name__ == "__main__":
    sys.exit(main())
