"""Where a request's CPU goes: py-spy's collapsed stacks of Tollgate's main process, each
sample given to one part of the request path (intake, auth and policies, routing, ...) by
the frames on its stack, then shares of samples turned into microseconds per request with
the CPU time the process spent per request while the profile was recorded (from /proc).
The ledger writer, a child process, is counted by its own CPU time.

    .venv/bin/python bench/breakdown.py [bench/profiles]   the table of each recorded profile

A sample belongs to the innermost frame on its stack that a part claims: a `json.loads`
called from the usage parser is pricing's, the same call from the intake is the intake's.
Frames no part claims (the standard library, pydantic, orjson's C code, which py-spy shows
as its Python caller) count for the part that called them. Only when no frame on the stack
is claimed does the sample go to the server and event loop (uvicorn, uvloop, asyncio,
Starlette's routing), and failing that to "other".
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROFILES = Path(__file__).resolve().parent / "profiles"


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    what: str  # shown beside the name in the tables
    claims: tuple[str, ...]  # a file or folder the frame runs in ("proxy/http/intake.py", "httpx/"), or a whole frame


# The request's path, in order. A frame is checked against each part in turn, so a more
# specific claim (providers/types.py: the intake's Call) must come before a wider one (providers/).
PARTS = (
    Part(
        "intake",
        "the body read and parsed into a `Call`, the request id",
        (
            "proxy/http/intake.py",
            "proxy/http/multipart.py",
            "proxy/http/ids.py",
            "providers/types.py",
            "starlette/requests.py",
        ),
    ),
    Part(
        "auth and policies",
        "the key's hash, the policy chain, budgets and rate limits with their counters",
        ("proxy/serving/auth.py", "proxy/serving/policy_chain.py", "policies/", "proxy/state/"),
    ),
    Part(
        "routing",
        "the route plan, the dispatch loop",
        ("proxy/serving/routing.py", "proxy/serving/dispatch.py", "proxy/serving/gateway.py"),
    ),
    Part(
        "pricing and usage",
        "the estimate before the call, usage and cost after it",
        ("proxy/pricing/", "proxy/pricing/usage.py", "providers/image_tokens.py"),
    ),
    Part(
        "upstream client",
        "the provider and its HTTP client (providers/http1.py; aiohttp's or httpx's in older revisions)",
        ("providers/", "httpx/", "httpcore/", "aiohttp/", "yarl/", "multidict/", "aiohappyeyeballs/", "propcache/"),
    ),
    Part(
        "journal append",
        "the ledger row kept up to date, serialised and appended to the journal",
        ("proxy/serving/recording.py", "proxy/ledger/"),
    ),
    Part(
        "metrics",
        "Prometheus counters and histograms",
        ("record_metrics (proxy/serving/observation.py)", "proxy/telemetry/metrics.py", "prometheus_client/"),
    ),
    Part(
        "access log",
        "the access-log line: the record, its JSON, the write to stderr",
        ("log_access (proxy/serving/observation.py)", "proxy/telemetry/logs.py", "logging/"),
    ),
    Part(
        "response assembly",
        "the handler's own work: headers, the `Response`, sending it",
        (
            "proxy/http/direct.py",
            "proxy/http/whole_answers.py",
            "proxy/http/endpoints.py",
            "proxy/serving/streaming.py",
            "starlette/responses.py",
            "starlette/background.py",
        ),
    ),
)
SERVER = Part(
    "server and event loop",
    "uvicorn and httptools, uvloop's sockets and the turn's held writes, asyncio, Starlette's routing and middleware",
    (
        "uvicorn/",
        "uvloop/",
        "asyncio/",
        "starlette/",
        "anyio/",
        "proxy/http/app.py",
        "proxy/serving/background.py",
        "(no Python frame)",
    ),
)
# The loop turn's held writes carry answers and upstream requests alike: socket work, the server's.
_HELD_WRITES = "(providers/turn_writes.py)"
OTHER = Part("other", "anything else", ())
REQUEST_PATH = (*PARTS, SERVER, OTHER)
# The ledger's writer is a child process (proxy/ledger/writer_process.py): off the request path,
# but its CPU is taken from the same two cores. py-spy counts a process waiting on the disk
# (fsync) as active, so its samples would overstate it: its time is read from /proc instead.
WRITER = Part("ledger writer (own process)", "journal lines into SQLite in batches; its CPU time from /proc", ())


def _claims(part: Part, frame: str) -> bool:
    path = frame[frame.rfind("(") + 1 : -1]
    return any(frame == claim or path.startswith(claim) for claim in part.claims)


def part_of(frames: list[str] | tuple[str, ...]) -> Part:
    """The part of the request path a sample belongs to; `frames` run from the root to the running frame."""
    for frame in reversed(frames):
        if frame.endswith(_HELD_WRITES):
            return SERVER
        for part in PARTS:
            if _claims(part, frame):
                return part
    return SERVER if any(_claims(SERVER, frame) for frame in frames) else OTHER


def read_stacks(collapsed: Path) -> Counter[tuple[str, ...]]:
    """py-spy's raw output: 'frame;frame;... COUNT' per line, with `--nolineno` frames
    'function (path)'. The process frames py-spy puts first with `--subprocesses`,
    'process PID:"COMMAND LINE"' (a child's after its parent's), are dropped; a command
    line may hold a ';'."""
    stacks: Counter[tuple[str, ...]] = Counter()
    # Lines end at "\n" only: a frame py-spy read while it changed may hold other line breaks ("\x0b").
    for line in collapsed.read_text().split("\n"):
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        while stack.startswith("process "):
            stack = stack[stack.find('";') + 2 :] if '";' in stack else ""
        frames = tuple(frame for frame in stack.split(";") if frame)
        stacks[frames or ("(no Python frame)",)] += int(count)
    return stacks


def request_path(stacks: Counter[tuple[str, ...]]) -> Counter[tuple[str, ...]]:
    """The main process's stacks: not a child's, which starts in multiprocessing/spawn.py (a
    worker) or in the ledger writer's `main`."""
    return Counter(
        {frames: count for frames, count in stacks.items() if not any(f.endswith(_CHILD_STARTS) for f in frames[:3])}
    )


_CHILD_STARTS = ("(multiprocessing/spawn.py)", "main (proxy/ledger/writer_process.py)")


def breakdown(stacks: Counter[tuple[str, ...]], main_us: float, children_us: float) -> list[dict]:
    """Microseconds of CPU per request by part: the main process's `main_us` shared out by
    its samples, then the child processes' `children_us` (the ledger writer), and each
    as a share of the whole."""
    by_part: Counter[str] = Counter()
    for frames, count in request_path(stacks).items():
        by_part[part_of(frames).name] += count
    samples = sum(by_part.values()) or 1
    found = [(part, by_part[part.name] / samples * main_us) for part in REQUEST_PATH]
    found.append((WRITER, children_us))
    total = (main_us + children_us) or 1
    return [
        {"part": part.name, "what": part.what, "share": round(us / total, 4), "us_per_request": round(us, 1)}
        for part, us in found
    ]


def table(rows: Iterable[dict]) -> str:
    """Markdown: each part, its share of Tollgate's CPU and its µs of CPU per request."""
    rows = list(rows)
    lines = ["| part | what it covers | % of CPU | µs per request |", "| --- | --- | ---: | ---: |"]
    lines += [
        f"| {row['part']} | {row['what']} | {100 * row['share']:.1f} | {row['us_per_request']:,.0f} |" for row in rows
    ]
    total = sum(row["us_per_request"] for row in rows)
    lines.append(f"| **total** | Tollgate's processes, per request | 100 | {total:,.0f} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Print the table of each profile recorded in a folder (default bench/profiles/)."""
    folder = Path(argv[0]) if argv else PROFILES
    recorded = json.loads((folder / "profiles.json").read_text())
    for key, profile in recorded["profiles"].items():
        main_us, children_us = profile["main_cpu_us_per_request"], profile["children_cpu_us_per_request"]
        cpu = f"{main_us + children_us:,.0f} µs of CPU per request"
        print(f"\n{profile['test']} ({profile['samples']:,} samples, {cpu})\n")
        print(table(breakdown(read_stacks(folder / f"{key}.txt"), main_us, children_us)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
