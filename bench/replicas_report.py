"""bench/replicas.py's figures as the Markdown section results.md shows."""

from __future__ import annotations

import statistics
from decimal import Decimal

_NOT_IN_SCRIPTS = {"evalsha", "eval", "ping", "hello", "client|setinfo", "script|load", "info", "config|resetstat"}


def render(facts: dict, steady: dict[int, dict], kill: dict) -> str:
    many = max(steady)
    return "\n\n".join(
        [
            _preamble(facts),
            "### Steady: one replica, then every replica up\n\n" + _scaling(steady) + "\n\n" + _steady(steady[many]),
            "### One replica killed with SIGKILL halfway, and restarted\n\n" + _kill(facts, kill),
        ]
    )


def _preamble(facts: dict) -> str:
    args = facts["args"]
    start, end = facts["load_average_start"], facts["load_average_end"]
    return (
        f"{args.replicas} replicas (`tollgate serve`, one worker each) behind deploy/nginx.conf (round robin), one "
        "PostgreSQL ledger (a database made for the run), one redis-server of the run's own (budgets and rate "
        f"limits of key and team on every request); concurrency {args.concurrency}. Tollgate {facts['rev']}; "
        f"{facts['nproc']} cores shared by every party; load average {' / '.join(map(str, start))} at the start, "
        f"{' / '.join(map(str, end))} at the end; `sum(range(10**6))` in {facts['python_loop_ms']} ms."
    )


def _tollgate(steady: dict) -> tuple[float, float]:
    """The replicas' cores together, and their CPU µs per request."""
    wrk = steady["cell"].wrk
    cores = sum(value for name, value in steady["cell"].cores.items() if name.startswith("tollgate "))
    return cores, cores * wrk.duration_s / wrk.requests * 1e6 if wrk.requests else 0


def _scaling(steady: dict[int, dict]) -> str:
    lines = [
        "wrk (bench/post.lua, every answer checked) through the balancer, upstream bench/upstream.py's nginx "
        "(fixed chat answers); `load.py`'s cell: a warm-up, then measured again while others kept the machine busy.",
        "",
        "| replicas | req/s | p50 ms | p99 ms | errors | Tollgate cores | Tollgate CPU µs/request "
        "| req/s per Tollgate core | others' cores |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for count, each in sorted(steady.items()):
        wrk, cores = each["cell"].wrk, each["cell"].cores
        used, per_request = _tollgate(each)
        lines.append(
            f"| {count} | {wrk.rps:,.0f} | {wrk.p50_ms:.1f} | {wrk.p99_ms:.1f} | {wrk.errors} | {used:.2f} "
            f"| {per_request:,.0f} | {1e6 / per_request if per_request else 0:,.0f} | {cores['other']:.2f} |"
        )
    return "\n".join(lines)


def _steady(steady: dict) -> str:
    cell = steady["cell"]
    wrk, cores = cell.wrk, dict(cell.cores)
    per_request_us = wrk.duration_s / wrk.requests * 1e6 if wrk.requests else 0
    tollgate, _ = _tollgate(steady)
    idle = sum(value for name, value in steady["background"].items() if name.startswith("tollgate "))
    lines = [
        f"With {sum(1 for name in cores if name.startswith('tollgate '))} replicas, where each request's CPU went:",
        "",
        "| party | cores busy | CPU µs per request |",
        "| --- | ---: | ---: |",
    ]
    for name, value in cores.items():
        lines.append(f"| {name} | {value:.2f} | {value * per_request_us:,.0f} |")
    lines.append(f"| **Tollgate, the replicas together** | **{tollgate:.2f}** | **{tollgate * per_request_us:,.0f}** |")
    neighbours = ", ".join(f"{name} {value}" for name, value in cell.neighbours.items()) or "none named"
    rows = steady["rows"]
    backend_us = steady["backends_cpu_s"] / rows * 1e6 if rows else 0
    lines += [
        "",
        f"Idle, the replicas together kept {idle:.2f} cores busy (health checks, the writers' heartbeats), "
        "included above. *wrk* is the load; *irq* the kernel "
        f"moving loopback packets; *other* work the run did not start ({neighbours}); *postgresql (all)* every "
        "PostgreSQL process on the machine, others' databases included. The backends of the run's own database "
        f"spent **{backend_us:,.0f} µs of CPU per ledger row** ({rows:,} rows, one per request, warm-up included), "
        f"and the database grew by {steady['bytes_per_row']:,.0f} bytes per row (rows, charges, indexes).",
        "",
        _redis(steady["commandstats"], rows, cores.get("redis", 0) * per_request_us),
    ]
    return "\n".join(lines)


def _redis(stats: dict, rows: int, cpu_us: float) -> str:
    """Commands per request from INFO commandstats (reset before the phase, so warm-up included,
    as in `rows`): the scripts (one round trip each) and the commands they ran inside."""
    calls = {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}
    usec = sum(value["usec"] for value in stats.values())
    scripts = calls.get("evalsha", 0) + calls.get("eval", 0)
    inside = {name: n for name, n in calls.items() if name not in _NOT_IN_SCRIPTS}
    listed = ", ".join(f"{name.upper()} {n / rows:.1f}" for name, n in sorted(inside.items(), key=lambda i: -i[1]))
    return (
        f"Redis: **{scripts / rows:.2f} round trips per request** (EVALSHA: the budgets' reserve and settle, the "
        f"rate limits' take), running **{sum(inside.values()) / rows:.1f} commands inside them** ({listed}); "
        f"besides, {calls.get('ping', 0)} PINGs (each replica's health check, one a second). Redis spent "
        f"{usec / rows:.0f} µs per request executing commands (commandstats) and **{cpu_us:.0f} µs of CPU per "
        f"request** in all (/proc, while measured): one Redis core would carry about "
        f"{1e6 / cpu_us if cpu_us else 0:,.0f} requests per second."
    )


def _kill(facts: dict, kill: dict) -> str:
    plan, outcomes, timeline, accounts = kill["plan"], kill["outcomes"], kill["timeline"], kill["accounts"]
    wall = timeline.ended_s - timeline.started_s
    killed = timeline.killed_s - timeline.started_s if timeline.killed_s else float("nan")
    refused = sum(n for status, n in accounts.answered.items() if status != "200")
    times = sorted((outcome.ended_s - outcome.sent_s) * 1000 for outcome in outcomes)
    budget = facts["capped_daily"]
    lines = [
        f"{len(outcomes):,} chat completions from the official SDK (AsyncOpenAI) in {wall:.1f} s "
        f"({len(outcomes) / wall:,.0f} req/s; p50 {statistics.median(times):.0f} ms), upstream the simulator "
        f"answering each after {facts['upstream_delay_s']} s; one in five from a team whose daily budget has room "
        "for about a third of "
        f"its requests. Replica {plan.victim} got SIGKILL at {killed:.1f} s with {timeline.in_flight_at_kill:.0f} "
        f"requests in flight (its gauge), and was ready again {timeline.restart_s:.1f} s later; requests of the "
        f"last third waited {timeline.held_s:.1f} s in all for it (the clients' waits summed).",
        "",
        "| requests | count |",
        "| --- | ---: |",
        f"| answered 200, each with exactly one `ok` row at its cost header | {accounts.answered['200']:,} |",
        f"| answered 429 `budget_exceeded`, each with its one row | {refused:,} |",
        f"| unanswered: nginx's 502, the replica died under them | {accounts.unanswered} |",
        f"| … of which `abandoned` after the restart, at their estimate | {accounts.abandoned} |",
        f"| … of which no row (killed before it was journaled) | {accounts.unanswered_without_row} |",
        f"| … of which `ok`, the answer lost with the replica | {accounts.lost} |",
        f"| sent by nginx to the dead replica, refused, and moved to a live one | {kill['moved']:,} |",
        f"| journals with `ok` rows ({facts['args'].replicas} replicas and the restarted one) | {accounts.journals} |",
        "",
        f"`/admin/spend` over the phase: `ok` rows **${accounts.spend_ok}**, the cost headers' sum "
        f"**${accounts.cost_headers}**"
        + (f" plus ${accounts.lost_cost} lost" if accounts.lost else "")
        + f" (Decimal, exact); `abandoned` rows ${accounts.spend_abandoned} (their estimates); total "
        f"${accounts.spend}.",
        "",
        f"The capped team: budget ${budget}, spent ${accounts.capped_spend} ({_share(accounts.capped_spend, budget)}; "
        f"allowed: one request's cost over it per replica). One request cost ${facts['one_cost']}; the budget "
        f"reserves ${facts['one_reserved']} while it runs (its estimate, `max_completion_tokens: 16`), so the "
        "team's requests on the three replicas compete for the last of it.",
        "",
        "**Every check held.**"
        if not accounts.problems
        else "**Checks that failed:**\n\n" + "\n".join(f"- {problem}" for problem in accounts.problems[:20]),
    ]
    return "\n".join(lines)


def _share(part: Decimal, whole: Decimal) -> str:
    return f"{part / whole * 100:.0f} % of it" if whole else "—"
