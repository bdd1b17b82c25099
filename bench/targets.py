"""Issue 14's targets for Tollgate, pass or fail, each figure also as a ratio to the
bare Python relay measured in the same run (absolute figures move from host to host;
the ratio much less); the headline table the issue compares peers in; and what each
part costs, from the variants that change one part."""

from __future__ import annotations

from proxies import TOLLGATE, VARIANTS

DIRECT, RELAY, TWO_WORKERS = "direct", "relay", "tollgate-2-workers"
PORTKEY, LITELLM = "portkey", "litellm"

CHAT_C64_MIN_RELAY_SHARE = 0.5  # chat at c=64: at least half the relay's requests per second
ADDED_P50_C1_MAX_MS = 0.5  # chat at c=1: p50 over direct's
IMAGE_C16_MIN_RELAY_SHARE = 0.9  # 2 MB image answers at c=16
# The image cell's median RSS may rise this much from its first half to its second: four
# of its 2 MB answers (buffers in flight at c=16 come and go; a leak moves the median up).
IMAGE_RSS_FLAT_MB = 8.0
TWO_WORKERS_MIN_SCALING = 1.7  # `--workers 2` on two cores, chat at c=64, over one worker
RSS_MAX_MB = 100  # after the memory run's requests
STARTUP_MAX_S = 0.5  # spawn to the first 200 from /readyz, median of the starts


ISSUE_TABLE = """From the issue, measured in one run on a 2-core machine (nginx as the upstream, wrk as the load):

| | chat c=1 p50 | chat c=64 req/s | 2 MB image c=16 req/s | start-up |
| --- | ---: | ---: | ---: | ---: |
| direct to nginx | 0.078 ms | 109,835 | 2,064 | |
| bare Python relay | 0.321 ms | 7,637 | 298 | 0.25 s |
| Tollgate | 1.19 ms | 1,100 | 243 | 0.67 s |
| Portkey gateway 1.15 (Node) | 1.24 ms | 827 | 34 | 0.33 s |
| LiteLLM proxy 1.108.7 | 10.26 ms | 94 | 42 | 6.36 s |"""


def cell(cells: list[dict], row: str, test: str) -> dict | None:
    return next((found for found in cells if found["row"] == row and found["test"] == test), None)


def speed_targets(cells: list[dict]) -> list[dict]:
    """The targets on Tollgate's throughput and latency (the ones a profile can explain)."""
    return [_chat_c64(cells), _added_p50(cells), _image_c16(cells)]


def targets(results: dict) -> list[dict]:
    """Each target: what it asks, what was measured, the ratio to the relay, pass."""
    cells = results["cells"]
    return [
        *speed_targets(cells),
        _two_workers(cells),
        _memory(results.get("memory"), cell(cells, RELAY, "chat_c64"), results["settings"]["memory_requests"]),
        _startup(results.get("startup") or {}),
    ]


def _answered(found: dict | None) -> bool:
    """A cell to divide by: measured, with answers."""
    return found is not None and found["rps"] > 0


def _target(target: str, measured: str, vs_relay: str, passed: bool) -> dict:
    return {"target": target, "measured": measured, "vs_relay": vs_relay, "pass": passed}


def _chat_c64(cells: list[dict]) -> dict:
    name = f"chat, c=64: ≥ {CHAT_C64_MIN_RELAY_SHARE:.0%} of the relay's req/s"
    tollgate, relay = cell(cells, TOLLGATE.row, "chat_c64"), cell(cells, RELAY, "chat_c64")
    if tollgate is None or not _answered(relay):
        return _target(name, "not measured", "—", False)
    peers = [
        f"{tollgate['rps'] / peer['rps']:.1f}× {label}"
        for label, peer in (
            ("Portkey", cell(cells, PORTKEY, "chat_c64")),
            ("LiteLLM", cell(cells, LITELLM, "chat_c64")),
        )
        if peer and peer["rps"]
    ]
    share = tollgate["rps"] / relay["rps"]
    return _target(
        name,
        f"{tollgate['rps']:,.0f} req/s, {tollgate['errors']} errors" + (f"; {', '.join(peers)}" if peers else ""),
        f"{share:.2f} (relay {relay['rps']:,.0f})",
        share >= CHAT_C64_MIN_RELAY_SHARE and tollgate["errors"] == 0 and relay["errors"] == 0,
    )


def _added_p50(cells: list[dict]) -> dict:
    name = f"chat, c=1: adds ≤ {ADDED_P50_C1_MAX_MS:g} ms p50 over direct"
    tollgate, relay, direct = (cell(cells, row, "chat_c1") for row in (TOLLGATE.row, RELAY, DIRECT))
    if not _answered(tollgate) or not _answered(direct):
        return _target(name, "not measured", "—", False)
    added = tollgate["p50_ms"] - direct["p50_ms"]
    measured = f"+{added:.2f} ms (p50 {tollgate['p50_ms']:.2f} vs {direct['p50_ms']:.2f} ms direct)"
    vs_relay = "—"
    if _answered(relay):
        relay_added = relay["p50_ms"] - direct["p50_ms"]
        vs_relay = f"{added / relay_added:.1f}× the relay's +{relay_added:.2f} ms" if relay_added > 0 else "—"
    return _target(name, measured, vs_relay, added <= ADDED_P50_C1_MAX_MS and tollgate["errors"] == 0)


def _image_c16(cells: list[dict]) -> dict:
    name = f"image 2 MB, c=16: ≥ {IMAGE_C16_MIN_RELAY_SHARE:.0%} of the relay's req/s, RSS flat"
    tollgate, relay = cell(cells, TOLLGATE.row, "image_c16"), cell(cells, RELAY, "image_c16")
    if tollgate is None or not _answered(relay):
        return _target(name, "not measured", "—", False)
    rss = tollgate.get("rss")
    flat = rss is not None and rss["growth_mb"] <= IMAGE_RSS_FLAT_MB
    memory = (
        f"RSS {rss['min_mb']:.0f}–{rss['max_mb']:.0f} MB, median {rss['first_half_median_mb']:.0f} → "
        f"{rss['second_half_median_mb']:.0f} MB from the first half to the second: {'flat' if flat else 'NOT flat'}"
        if rss
        else "RSS not sampled"
    )
    share = tollgate["rps"] / relay["rps"]
    return _target(
        name,
        f"{tollgate['rps']:,.0f} req/s, {tollgate['errors']} errors; {memory}",
        f"{share:.2f} (relay {relay['rps']:,.0f})",
        share >= IMAGE_C16_MIN_RELAY_SHARE and flat and tollgate["errors"] == 0,
    )


def _two_workers(cells: list[dict]) -> dict:
    name = f"chat, c=64, 2 workers: ≥ {TWO_WORKERS_MIN_SCALING:g}× one worker"
    one, two, relay = (cell(cells, row, "chat_c64") for row in (TOLLGATE.row, TWO_WORKERS, RELAY))
    if not _answered(one) or two is None:
        return _target(name, "not measured", "—", False)
    scaling = two["rps"] / one["rps"]
    return _target(
        name,
        f"{two['rps']:,.0f} vs {one['rps']:,.0f} req/s: {scaling:.2f}×, {two['errors']} errors",
        f"{two['rps'] / relay['rps']:.2f} (relay, one worker)" if _answered(relay) else "—",
        scaling >= TWO_WORKERS_MIN_SCALING and two["errors"] == 0,
    )


def _memory(memory: dict | None, relay_c64: dict | None, requests: int) -> dict:
    name = f"RSS < {RSS_MAX_MB} MB after {requests:,} requests, and flat"
    if not memory:
        return _target(name, "not measured", "—", False)
    relay_rss = (relay_c64 or {}).get("rss")
    return _target(
        name,
        f"start {memory['start_mb']:.1f}, max {memory['max_mb']:.1f}, end {memory['end_mb']:.1f} MB; "
        f"{memory['growth_after_first_quarter_mb']:+.1f} MB after the first quarter",
        f"{memory['end_mb'] / relay_rss['max_mb']:.1f}× (relay {relay_rss['max_mb']:.0f} MB at chat c=64)"
        if relay_rss
        else "—",
        memory["max_mb"] < RSS_MAX_MB and memory["flat"] and memory["errors"] == 0,
    )


def _startup(startup: dict) -> dict:
    name = f"start-up to ready < {STARTUP_MAX_S:g} s (median)"
    tollgate, relay = startup.get(TOLLGATE.row), startup.get(RELAY)
    if not tollgate:
        return _target(name, "not measured", "—", False)
    return _target(
        name,
        f"median {tollgate['median_s']:.2f} s, max {tollgate['max_s']:.2f} s over {len(tollgate['runs_s'])} starts",
        f"{tollgate['median_s'] / relay['median_s']:.1f}× (relay {relay['median_s']:.2f} s)" if relay else "—",
        tollgate["median_s"] < STARTUP_MAX_S,
    )


def headline(results: dict) -> list[dict]:
    """The issue's table: each row's chat p50 at c=1, chat and image req/s, start-up;
    then Tollgate's figures over the relay's."""
    cells, rows, startup = results["cells"], results["rows"], results.get("startup") or {}
    table = []
    for name in (DIRECT, RELAY, TOLLGATE.row, TWO_WORKERS, PORTKEY, LITELLM):
        if name not in rows:
            continue
        chat_c1, chat_c64, image = (cell(cells, name, test) for test in ("chat_c1", "chat_c64", "image_c16"))
        started = startup.get(name, {}).get("median_s") or rows[name].get("ready_s")
        table.append(
            {
                "label": rows[name]["label"],
                "chat_c1_p50_ms": chat_c1["p50_ms"] if _answered(chat_c1) else None,
                "chat_c64_rps": chat_c64 and chat_c64["rps"],
                "image_c16_rps": image and image["rps"],
                "startup_s": None if name == DIRECT else started,
            }
        )
    return table


def part_costs(cells: list[dict], rows: dict) -> list[dict]:
    """What each variant's part costs: p50 at c=1 against Tollgate's (Tollgate − row for a
    part left out, row − Tollgate for a part swapped), and req/s at c=64 over Tollgate's."""
    found = []
    for variant in VARIANTS.values():
        if variant.row not in rows:
            continue
        entry = {"label": variant.label, "change": variant.change, "compares": variant.compares}
        entry |= {"added_p50_ms": None, "c64_share": None, "bound_ms": variant.bound_ms, "pass": None}
        base, row = cell(cells, TOLLGATE.row, "chat_c1"), cell(cells, variant.row, "chat_c1")
        if _answered(base) and _answered(row):
            added = base["p50_ms"] - row["p50_ms"] if variant.compares == "without" else row["p50_ms"] - base["p50_ms"]
            entry["added_p50_ms"] = round(added, 3)
            if variant.bound_ms is not None:
                entry["pass"] = added <= variant.bound_ms
        base, row = cell(cells, TOLLGATE.row, "chat_c64"), cell(cells, variant.row, "chat_c64")
        if _answered(base) and row:
            entry["c64_share"] = round(row["rps"] / base["rps"], 3)
        found.append(entry)
    return found
