"""results.md, for people, and the summary run.py prints: the issue's table, Tollgate's
targets with their ratio to the bare relay, every cell, and where a request's CPU goes.

.venv/bin/python bench/report.py [bench/out/results.json]   re-render results.md from the JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import memory
import profiling
import targets
from load import NOISY_OTHER_CORES, TESTS


def render(results: dict) -> str:
    parts = [
        "# Benchmark results",
        f"Run {results['started_utc']} by `{results['command']}` in {results['elapsed_s']} s. "
        "What is measured and how to read it: [README.md](README.md). Raw figures: `bench/out/results.json`.",
        _machine_note(results["machine"]),
        "## Side by side\n\n" + headline_table(results) + "\n\n" + targets.ISSUE_TABLE,
        _targets_section(results["targets"]),
        _cells_section(results),
        _part_costs_section(targets.part_costs(results["cells"], results["rows"])),
        _relay_section(results["rows"]),
        _startup_section(results.get("startup") or {}, results["rows"]),
        memory.section(results.get("memory")),
        _ledger_writer_section(),
        profiling.section(results.get("profile")),
        _setup_section(results),
    ]
    return "\n\n".join(part for part in parts if part) + "\n"


def _machine_note(machine: dict) -> str:
    start, end = machine.get("load_average_start"), machine.get("load_average_end")
    loads = f"load average {_loads(start)} (1, 5, 15 min) at the start, {_loads(end)} at the end"
    busy = start is not None and start[0] > machine["nproc"]
    return (
        f"**{'A loaded machine' if busy else 'The machine'}:** {loads}, on {machine['nproc']} cores; "
        f"pure-Python speed `sum(range(10**6))` in {machine.get('python_loop_ms', '—')} ms. "
        + (
            "Other people's work ran beside this run, so absolute figures are low and noisy; compare the rows "
            "of this run with each other (the ratios), not with another host's figures."
            if busy
            else "Compare runs on other hosts by the ratios, and by the pure-Python speed."
        )
    )


def _loads(values: list[float] | None) -> str:
    return "—" if not values else " / ".join(f"{value:.1f}" for value in values)


def headline_table(results: dict) -> str:
    """The issue's table for this run, and Tollgate's figures over the relay's."""
    rows = targets.headline(results)
    lines = [
        "| | chat c=1 p50 | chat c=64 req/s | 2 MB image c=16 req/s | start-up |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['label']} | {_figure(row['chat_c1_p50_ms'], '{:.3f} ms')} | "
            f"{_figure(row['chat_c64_rps'], '{:,.0f}')} | {_figure(row['image_c16_rps'], '{:,.0f}')} | "
            f"{_figure(row['startup_s'], '{:.2f} s')} |"
        )
    by_label = {row["label"]: row for row in rows}
    tollgate, relay = by_label.get("Tollgate"), by_label.get("bare Python relay")
    if tollgate and relay:
        ratios = [
            _over(tollgate[field], relay[field])
            for field in ("chat_c1_p50_ms", "chat_c64_rps", "image_c16_rps", "startup_s")
        ]
        lines.append(f"| *Tollgate ÷ relay* | {' | '.join(ratios)} |")
    return "\n".join(lines)


def _figure(value: float | None, shape: str) -> str:
    return "—" if value is None else shape.format(value)


def _over(value: float | None, base: float | None) -> str:
    return "—" if not value or not base else f"{value / base:.2f}×"


def _ledger_writer_section() -> str:
    """The ledger's own figures, from `bench/ledger_writer.py` and `bench/ledger_scale.py` (separate commands)."""
    writer, scale = (Path(__file__).parent / "out" / name for name in ("ledger_writer.md", "ledger_scale.md"))
    heading = "## Ledger writer throughput\n\nFrom `.venv/bin/python bench/ledger_writer.py`:\n\n"
    parts = [heading + writer.read_text()] if writer.exists() else []
    return "\n\n".join([*parts, scale.read_text()] if scale.exists() else parts)


def summary(results: dict) -> str:
    """What run.py prints: the issue's table for this run, then each target."""
    verdicts = [
        f"{_verdict(t['pass'], 'PASS', 'FAIL')}  {t['target']}: {t['measured']} [× relay: {t['vs_relay']}]"
        for t in results["targets"]
    ]
    machine = results["machine"]
    note = (
        f"pure-Python speed: sum(range(10**6)) in {machine['python_loop_ms']} ms; "
        f"load average at the start {_loads(machine.get('load_average_start'))}"
    )
    return "\n".join([headline_table(results), "", note, "", *verdicts])


def _verdict(passed: bool | None, yes: str, no: str) -> str:
    return "—" if passed is None else yes if passed else no


def _targets_section(found: list[dict]) -> str:
    lines = [
        "## Tollgate's targets",
        "",
        "Issue 14's, for one worker with the ledger, metrics, the access log, client keys, budgets and rate "
        "limits on. *× relay* is Tollgate's figure over the bare Python relay's in this run.",
        "",
        "| target | measured | × relay | result |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {t['target']} | {t['measured']} | {t['vs_relay']} | {_verdict(t['pass'], '**pass**', '**FAIL**')} |"
        for t in found
    ]
    return "\n".join(lines)


def _cells_section(results: dict) -> str:
    rows, cells = results["rows"], results["cells"]
    lines = [
        "## Throughput and latency",
        "",
        f"Every row gets the same wrk script and load; {results['settings']['warmup_s']:g} s warm-up, then "
        f"{results['settings']['duration_s']:g} s measured per cell. *Added* is the row's latency minus "
        "direct's; *× relay* its throughput over the bare relay's. *CPU µs/req* is the server's CPU time "
        "per answer (its cores over its req/s). *RSS* is the most the row's server held while measured. "
        "*Cores* is the average CPU each party kept busy while measuring: proxy / nginx / wrk / irq (the "
        "kernel moving loopback packets) / other (processes the benchmark did not start). *Errors* are "
        "socket errors, answers with a bad status (chat: any but 200; image: 400 and up, as wrk counts "
        "them) and answers without their body (chat: each checked; image: from wrk's byte count).",
        "",
        "| test | row | req/s | p50 ms | p99 ms | errors | added p50 ms | added p99 ms | × relay | CPU µs/req "
        "| RSS MB | cores: proxy / nginx / wrk / irq / other |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    noisy: list[str] = []
    for test in TESTS:
        direct, relay = (targets.cell(cells, row, test.key) for row in (targets.DIRECT, targets.RELAY))
        for name, row in rows.items():
            cell = targets.cell(cells, name, test.key)
            if cell is None:
                if row["status"] != "measured":  # else the row measures other tests only (2 workers)
                    lines.append(f"| {test.name} | {row['label']} | {' | '.join('—' * 10)} | {row['status']} |")
                continue
            if cell["cores"]["other"] > NOISY_OTHER_CORES:
                named = ", ".join(f"{process} {cores:.2f}" for process, cores in cell["neighbours"].items())
                named = named or "none named"
                noisy.append(f"{test.name} / {row['label']}: {named}")
            lines.append(
                f"| {test.name} | {row['label']} | {cell['rps']:,.0f} | {cell['p50_ms']:.2f} | {cell['p99_ms']:.2f} | "
                f"{_errors(cell)} | {_added(cell, direct, 'p50_ms')} | {_added(cell, direct, 'p99_ms')} | "
                f"{_ratio(cell, relay)} | {_cpu_per_answer(cell)} | {_rss(cell)} | {_cores(cell)} |"
            )
    for row in rows.values():
        if row["status"] != "measured":
            lines += ["", f"**{row['label']}: {row['status']}.** {_one_paragraph(row.get('reason', ''))}"]
    if noisy:
        lines += [
            "",
            f"⚠ marks a cell during which processes the benchmark did not start kept more than {NOISY_OTHER_CORES} "
            "cores busy even after the retries; treat it with caution. The busiest of them (cores; "
            f"processes that came and went are not named): {'; '.join(noisy)}.",
        ]
    return "\n".join(lines)


def _errors(cell: dict) -> str:
    if cell["requests"] == 0:
        return "no answer in time"
    if cell["errors"] == 0:
        return "0"
    bad_status = max(cell["non_200"], cell["status_400_up"])
    return f"{cell['errors']} (status {bad_status}, short {cell['short']}, socket {cell['socket_errors']})"


def _added(cell: dict, direct: dict | None, field: str) -> str:
    if direct is None or cell is direct or cell["requests"] == 0:
        return "—"
    return f"{cell[field] - direct[field]:+.2f}"


def _ratio(cell: dict, base: dict | None) -> str:
    return "—" if base is None or not base["rps"] else f"{cell['rps'] / base['rps']:.3f}"


def _cpu_per_answer(cell: dict) -> str:
    """The server's CPU time per answer: nginx's for direct, the proxy's otherwise."""
    cores = cell["cores"]
    server = next((value for name, value in cores.items() if name not in ("nginx", "wrk", "irq", "other")), None)
    server = cores.get("nginx") if server is None else server
    return "—" if server is None or not cell["rps"] else f"{server / cell['rps'] * 1e6:,.0f}"


def _rss(cell: dict) -> str:
    rss = cell.get("rss")
    return "—" if not rss else f"{rss['max_mb']:.0f}"


def _part_costs_section(costs: list[dict]) -> str:
    if not costs:
        return ""
    lines = [
        "## What each part costs",
        "",
        "Tollgate with one part changed (`--variants`). *Adds p50*: Tollgate's p50 minus the row's at chat c=1 "
        "for a part left out, the row's minus Tollgate's for a part swapped for another; *c=64*: the row's "
        "req/s over Tollgate's. The bounds are earlier issues' (3: ledger, 4: metrics, 5: keys and policies).",
        "",
        "| row | changes | adds p50 ms, chat c=1 | c=64 req/s × Tollgate | bound | result |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for cost in costs:
        added = "—" if cost["added_p50_ms"] is None else f"{cost['added_p50_ms']:+.2f}"
        share = "—" if cost["c64_share"] is None else f"{cost['c64_share']:.3f}"
        bound = "—" if cost["bound_ms"] is None else f"≤ {cost['bound_ms']:g} ms"
        lines.append(
            f"| {cost['label']} | {cost['change']} | {added} | {share} | {bound} | "
            f"{_verdict(cost['pass'], '**pass**', '**FAIL**')} |"
        )
    return "\n".join(lines)


def _cores(cell: dict) -> str:
    cores = cell["cores"]
    proxy = next((value for name, value in cores.items() if name not in ("nginx", "wrk", "irq", "other")), None)
    shown = (proxy, cores.get("nginx"), cores["wrk"], cores["irq"], cores["other"])
    text = " / ".join("—" if value is None else f"{value:.2f}" for value in shown)
    if cores["other"] > NOISY_OTHER_CORES:
        text += " ⚠"
    if cell["tries"] > 1:
        text += f" ({cell['tries']} tries)"
    return text


def _relay_section(rows: dict) -> str:
    lines = [
        "## Relay check",
        "",
        "One request per exchange before each row is measured: status 200 and the upstream's content "
        "(byte for byte, or the same message / image bytes when the proxy re-serialises).",
        "",
        "| row | chat | image |",
        "| --- | --- | --- |",
    ]
    for row in rows.values():
        if "relay" not in row:
            continue
        checks = {check["exchange"]: check for check in row["relay"]}
        lines.append(f"| {row['label']} | {_relay_cell(checks.get('chat'))} | {_relay_cell(checks.get('image'))} |")
    return "\n".join(lines)


def _relay_cell(check: dict | None) -> str:
    if check is None:
        return "—"
    verdict = "identical" if check["identical"] else check["note"]
    return f"{verdict} ({check['body_bytes']:,} B)"


def _startup_section(startup: dict, rows: dict) -> str:
    if not startup:
        return ""
    lines = [
        "## Start-up to ready",
        "",
        "From spawning the server to its first 200, a fresh process each time: Tollgate's `GET /readyz`, "
        "the relay's first relayed answer, Portkey's `GET /`.",
        "",
        "| row | starts (s) | median s | max s |",
        "| --- | --- | ---: | ---: |",
    ]
    for name, found in startup.items():
        runs = ", ".join(f"{value:.2f}" for value in found["runs_s"])
        lines.append(f"| {rows[name]['label']} | {runs} | {found['median_s']:.2f} | {found['max_s']:.2f} |")
    if ready_s := rows.get(targets.LITELLM, {}).get("ready_s"):
        lines.append(f"| LiteLLM proxy (`GET /health/readiness`, the row's one start) | {ready_s:.2f} | | |")
    return "\n".join(lines)


def _setup_section(results: dict) -> str:
    machine, versions, settings = results["machine"], results["versions"], results["settings"]
    uncommitted = versions["tollgate_uncommitted"]
    rev = f"{versions['tollgate_rev']} ({versions['tollgate_source']}"
    rev += f", with uncommitted changes to {len(uncommitted)} files)" if uncommitted else ")"
    stack = ", ".join(f"{name} {version}" for name, version in versions["tollgate_stack"].items())
    threads = ", ".join(
        f"{test['name']}: -t{test['wrk_threads']} -c{test['connections']}" for test in settings["tests"]
    )
    return "\n".join(
        [
            "## Set-up",
            "",
            f"- machine: {machine['nproc']} cores ({machine['cpu_model']}), {machine['memory_gib']} GiB, "
            f"{machine['os']}, kernel {machine['kernel']}; pure-Python speed: `sum(range(10**6))` in "
            f"{machine.get('python_loop_ms', '—')} ms (best of 5)",
            f"- Tollgate {rev}, Python {versions['python']}, one worker (uvicorn, uvloop, httptools) and, for one "
            f"row, two; {stack}",
            "- Tollgate's config: the ledger in SQLite, metrics on, the access log (JSON) on stderr, written to "
            "a file; the benchmark's key as a client key with budgets and rate limits (counters in memory)",
            "- bare Python relay: bench/relay.py, the same Python, uvicorn, uvloop, httptools and aiohttp",
            f"- Portkey gateway {versions.get('portkey') or '—'} (`@portkey-ai/gateway` from npm, Node "
            f"{versions.get('node') or '—'}, `--headless`, one process)",
            f"- LiteLLM {versions.get('litellm') or '—'} (`litellm[proxy]`, own venv, `--num_workers 1`, "
            "spend and error logs off, `LITELLM_LOG=ERROR`, local cost map)",
            f"- upstream: {versions['nginx']}, one worker, static answers: {_answer_sizes(results['rows'])}",
            f"- load: {versions['wrk']} with bench/post.lua ({threads}); CPU pinning: {settings['pinning']}",
            f"- PYTHONDONTWRITEBYTECODE={machine['PYTHONDONTWRITEBYTECODE']}"
            + (
                " (the project's own modules are compiled at every start-up)"
                if machine["PYTHONDONTWRITEBYTECODE"]
                else ""
            ),
        ]
    )


def _answer_sizes(rows: dict) -> str:
    direct = {check["exchange"]: check["body_bytes"] for check in rows.get("direct", {}).get("relay", [])}
    return (
        f"a chat.completion of {direct.get('chat', 0):,} B; an images response of {direct.get('image', 0):,} B "
        "(one `b64_json` of 1.5 MiB of random bytes, and `usage`)"
    )


def _one_paragraph(text: str) -> str:
    return " ".join(text.split())[:1500]


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "out" / "results.json"
    data = json.loads(source.read_text())
    (Path(__file__).resolve().parent / "results.md").write_text(render(data))
    print(summary(data))
