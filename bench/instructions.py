"""Instructions per request: Tollgate's main process under callgrind, counting the
instructions it executes while wrk drives one test, divided by the requests answered.
Unlike seconds, the count does not move with how busy or fast this machine is today
(it moved threefold within a day here), so an A/B of a change is read in one run of
a few minutes, not in many. It counts user-space work only (Python, uvloop, the C
libraries), not the kernel's; the ledger writer, a child process, is not counted.

    .venv/bin/python bench/instructions.py [--tests chat_c64,image_c16] [--against REV ...] [--seconds 20]
"""

from __future__ import annotations

import argparse
import re
import secrets
import subprocess
import sys

import peers
import proxies
import record
from load import TESTS
from processes import Processes, free_port
from run import OUT, REPO, Benchmark
from upstream import write_exchanges

_READY_TIMEOUT_S = 300.0  # start-up under callgrind is some fifty times slower


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", default="chat_c64", help="comma-separated test keys (bench/load.py)")
    parser.add_argument("--against", action="append", default=[], help="also count Tollgate at this revision")
    parser.add_argument("--seconds", type=float, default=20, help="counted per test (and 5 s of warm-up before)")
    parser.add_argument("--relay", action="store_true", help="also count the bare relay (bench/relay.py)")
    parser.add_argument(
        "--variants", default="", help="also count these variants of the working tree (bench/proxies.py VARIANTS)"
    )
    args = parser.parse_args()
    tests = [test for test in TESTS if test.key in args.tests.split(",")]
    logs = OUT / "logs-instructions"
    logs.mkdir(parents=True, exist_ok=True)
    sources = {f"tollgate@{rev}": record.export_rev(rev) for rev in args.against} | {"tollgate": None}
    found: dict[tuple[str, str], tuple[float, int]] = {}
    with Processes(logs) as processes:
        bench = Benchmark(argparse.Namespace(warmup=0, duration=args.seconds), processes, logs, None)
        bench.api_key = "sk-bench-" + secrets.token_hex(24)
        bench.exchanges = write_exchanges(OUT)
        upstream_url = bench._start_nginx()
        servers = [
            (name, proxies.tollgate(REPO, OUT, upstream_url, bench.api_key, source)) for name, source in sources.items()
        ]
        if args.relay:
            servers.insert(0, ("relay", peers.relay(REPO, upstream_url)))
        for row in filter(None, args.variants.split(",")):
            variant = proxies.VARIANTS[row]
            servers.append((row, proxies.tollgate(REPO, OUT, upstream_url, bench.api_key, variant=variant)))
        for name, proxy in servers:
            for test in tests:  # a process per test: its count is the one callgrind writes at exit
                found[name, test.key] = _count(bench, processes, proxy, name, test, args.seconds)
    first = "relay" if args.relay else next(iter(sources))
    for test in tests:
        base = found.get((first, test.key))
        for (name, key), (per_request, requests) in found.items():
            if key == test.key:
                ratio = f" {per_request / base[0]:.3f}x {first}" if base and len(found) > len(tests) else ""
                print(f"{key:10} {name:24} {per_request:12,.0f} instructions/req over {requests:,} requests{ratio}")
    return 0


def _count(bench: Benchmark, processes: Processes, proxy, name: str, test, seconds: float) -> tuple[float, int]:
    out = OUT / f"callgrind-{name}-{test.key}.out"
    out.unlink(missing_ok=True)
    port = free_port()
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--trace-children=no", f"--callgrind-out-file={out}"]
    processes.start(name, [*argv, *_python_first(proxy.command(port))], env=proxy.env, cwd=proxy.cwd)
    try:
        processes.wait_until_ready(name, proxy.base_url(port) + proxy.ready_path, _READY_TIMEOUT_S)
        pid = processes.sessions()[name]
        bench._wrk(proxy.base_url(port), test, 5)  # warm: pools, caches, first-call imports
        _control(pid, "--instr=on")
        run = bench._wrk(proxy.base_url(port), test, seconds)
        _control(pid, "--instr=off")
    finally:
        processes.stop(name, grace_s=60)
    match = re.search(r"^totals: (\d+)", out.read_text(errors="replace"), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no instruction total in {out}")
    return int(match.group(1)) / max(run.requests, 1), run.requests


def _python_first(command: list[str]) -> list[str]:
    """Callgrind runs a binary: a console script (`tollgate`) goes through the venv's Python."""
    python = str(REPO / ".venv" / "bin" / "python")
    return command if command[0] == python else [python, *command]


def _control(pid: int, option: str) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True, timeout=60)


if __name__ == "__main__":
    sys.exit(main())
