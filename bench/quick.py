"""A quick A/B for work on Tollgate's speed: nginx, then the bare relay and Tollgate
(the working tree, or `--rev`) measured one after the other on the chosen tests, with
each Tollgate figure over the relay's and the CPU each spent per answer. Not the
benchmark (run.py is): no peers, no memory run, one try per cell.

    .venv/bin/python bench/quick.py [--tests chat_c64,chat_c1,image_c16] [--duration 5] [--rev HEAD]
"""

from __future__ import annotations

import argparse
import secrets
import sys

import load
import peers
import proxies
import record
from load import TESTS, measure
from processes import Processes, free_port
from run import OUT, REPO, Benchmark
from upstream import write_exchanges


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", default="chat_c64,chat_c1,image_c16", help="comma-separated test keys")
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--rev", help="measure Tollgate as committed at this revision")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--quiet-wait", type=float, default=3, help="at most this long waiting for a quiet second")
    parser.add_argument("--no-relay", action="store_true", help="Tollgate only")
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
        source = record.export(record.git("rev-parse", "--verify", f"{args.rev}^{{commit}}")) if args.rev else None
        rows = [] if args.no_relay else [peers.relay(REPO, upstream_url)]
        rows.append(proxies.tollgate(REPO, OUT, upstream_url, bench.api_key, source, workers=args.workers))
        found: dict[tuple[str, str], dict] = {}
        for proxy in rows:
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
        for test in tests:
            relay = found.get(("relay", test.key))
            for (row, key), cell in found.items():
                if key != test.key:
                    continue
                cpu_us = cell["cores"][row] / cell["rps"] * 1e6 if cell["rps"] else 0
                ratio = f" {cell['rps'] / relay['rps']:.3f}x relay" if relay and row != "relay" else ""
                print(
                    f"{test.key:10} {row:22} {cell['rps']:8,.0f} req/s p50 {cell['p50_ms']:6.2f} ms"
                    f" cpu {cpu_us:6,.0f} us/req errors {cell['errors']} other {cell['cores']['other']:.2f}{ratio}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
