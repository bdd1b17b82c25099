"""Tollgate's resident memory over a long load: RSS sampled every second while wrk sends
at least N chat requests, and whether it stayed flat once pools and caches had filled."""

from __future__ import annotations

import time
from collections.abc import Callable

from load import WrkRun
from procfs import RssSampler, rss_bytes, session_pids

# RSS may move this much after the first quarter of the run and still count as flat:
# allocator noise, not a leak (a leak of even 100 bytes a request shows as ~7 MB here).
RSS_FLAT_MB = 2.0
_MB = 1024 * 1024


def memory_under_load(session: int, wanted: int, wrk_for: Callable[[float], WrkRun]) -> dict:
    """RSS of a session's processes (idle, then every second under load, then at the end)
    while `wrk_for(seconds)` runs until `wanted` requests were sent. wrk runs for a
    duration, not a count, so it runs in rounds sized by the rate seen so far (usually two)."""
    time.sleep(1)
    idle = rss_bytes(session_pids(session))
    runs: list[WrkRun] = []
    with RssSampler(session) as rss:
        started = time.perf_counter()
        while (sent := sum(run.requests for run in runs)) < wanted:
            rate = sent / (time.perf_counter() - started) if runs else None
            runs.append(wrk_for(10 if not rate else max(2, (wanted - sent) / rate * 1.05)))
            if runs[-1].requests == 0:
                break  # nothing gets through; the errors say why
    end = rss_bytes(session_pids(session))
    return memory_summary(idle, rss.samples, end, runs)


def memory_summary(idle: int, samples: list[tuple[float, int]], end: int, runs: list[WrkRun]) -> dict:
    """`samples` are (seconds, RSS bytes) taken every second under load; `idle` before it,
    `end` after it. Growth is measured from the first quarter, past pools filling up."""
    values = [rss for _, rss in samples] or [end]
    quarter = values[len(values) // 4]
    growth = (end - quarter) / _MB
    requests = sum(run.requests for run in runs)
    duration = sum(run.duration_s for run in runs)
    return {
        "requests": requests,
        "rps": round(requests / duration, 1) if duration else 0.0,
        "errors": sum(run.errors for run in runs),
        "duration_s": round(duration, 1),
        "wrk_runs": len(runs),
        "start_mb": round(idle / _MB, 1),
        "after_first_quarter_mb": round(quarter / _MB, 1),
        "max_mb": round(max([*values, idle, end]) / _MB, 1),
        "end_mb": round(end / _MB, 1),
        "growth_after_first_quarter_mb": round(growth, 1),
        "flat": growth <= RSS_FLAT_MB,
        "samples_mb": [[seconds, round(rss / _MB, 1)] for seconds, rss in samples],
    }


def section(memory: dict | None) -> str:
    if not memory:
        return ""
    samples = ", ".join(f"{mb:.1f}" for _, mb in memory["samples_mb"][::5])
    return (
        "## Tollgate memory under load\n\n"
        f"RSS of a fresh Tollgate while wrk sent {memory['requests']:,} chat requests at c=64 in "
        f"{memory['wrk_runs']} runs ({memory['rps']:,.0f} req/s over {memory['duration_s']:.0f} s, "
        f"{memory['errors']} errors): start {memory['start_mb']:.1f} MB (idle, after ready), "
        f"{memory['after_first_quarter_mb']:.1f} MB after the first quarter, "
        f"max {memory['max_mb']:.1f} MB, end {memory['end_mb']:.1f} MB. "
        f"{'Flat' if memory['flat'] else 'Not flat'}: {memory['growth_after_first_quarter_mb']:+.1f} MB "
        f"after the first quarter (flat means at most {RSS_FLAT_MB:g} MB).\n\n"
        f"Every fifth of the samples taken each second (MB): {samples}."
    )
