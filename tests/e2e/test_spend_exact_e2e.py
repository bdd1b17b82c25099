"""A few hundred mixed requests — official and provider tables, failures, retries,
fallbacks, streams — and then: every row's cost recomputed independently from its
usage and the published prices, and the report's totals equal to the sum of the
rows, to the nano-dollar."""

from __future__ import annotations

import random
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import openai
import pytest

from proxy.ledger import Filters
from proxy.ledger.sql import SqlLedger

from .configs import VERIFIED, ConfigFile, acme_on, acme_price_table, openai_on, route, target
from .harness import marker

OFFICIAL = {
    "text_input": Decimal(5),
    "cached_text_input": Decimal("1.25"),
    "image_input": Decimal(8),
    "image_output": Decimal(30),
    "text_output": Decimal(10),
}  # gpt-image-2, USD per 1M
ACME_IMAGE = {
    ("low", "1024x1024"): Decimal("0.009"),
    ("low", "1536x1024"): Decimal("0.007"),
    ("medium", "1024x1024"): Decimal("0.06"),
    ("high", "1024x1024"): Decimal("0.25"),
}
ACME_CHAT = {"text_input": Decimal("0.80"), "cached_text_input": Decimal("0.08"), "text_output": Decimal("4.80")}


def config(simulator_url: str) -> ConfigFile:
    """Acme's table holds the prices above; a failed try at acme is billed at its estimate."""
    acme_images: dict[str, dict[str, Decimal]] = {}
    for (quality, size), price in ACME_IMAGE.items():
        acme_images.setdefault(quality, {})[size] = price
    return ConfigFile(
        price_tables={
            "acme-2026-11": acme_price_table(
                **{"gpt-image-2": {"image": acme_images}, "gpt-5.4-mini": {"tokens": ACME_CHAT}}
            )
        },
        providers={
            "openai": openai_on(simulator_url, api_key="sk-up-openai"),
            "acme": acme_on(
                simulator_url,
                api_key="sk-up-acme",
                price_table="acme-2026-11",
                failed_attempts="estimate",
                verified={**VERIFIED, "failed_call_billing": "estimate"},
            ),
        },
        routes={
            "gpt-image-2": route(target("openai", "gpt-image-2"), fallbacks=[target("acme", "gpt-image-2")], retries=1),
            "acme-first": route(target("acme", "gpt-image-2"), fallbacks=[target("openai", "gpt-image-2")], retries=1),
            "gpt-5.4-mini": route(target("acme", "gpt-5.4-mini"), retries=1),
        },
    )


def traffic(client, rng: random.Random, index: int) -> dict:
    """One request of a random kind, and what the client saw of it: the request id, the
    provider that answered and the upstream's usage, the truth a row is checked against."""
    kind = rng.choice(
        [
            "image",
            "image",
            "image_fallback",
            "acme_image",
            "acme_retry_then_openai",
            "image_stream",
            "chat",
            "chat_stream",
            "moderation",
            "server_error_retry",
            "timeout",
            "cut_stream",
        ]
    )
    size = rng.choice(["1024x1024", "1536x1024"]) if kind != "acme_image" else "1024x1024"
    quality = rng.choice(["low", "medium", "high"]) if size == "1024x1024" else "low"
    prompt = f"picture {index} " + "words " * rng.randint(0, 30)
    image = dict(model="gpt-image-2", size=size, quality=quality, prompt=prompt)
    seen: dict = {"kind": kind, "size": size, "quality": quality}
    try:
        match kind:
            case "image" | "image_fallback" | "acme_image" | "acme_retry_then_openai" | "server_error_retry":
                fault = {
                    "image_fallback": marker("unavailable", upstream="openai"),
                    "acme_retry_then_openai": marker("server_error", upstream="acme"),
                    "server_error_retry": marker("server_error", times=1, upstream="openai"),
                }.get(kind, "")
                model = "acme-first" if kind.startswith("acme") else "gpt-image-2"
                raw = client.images.with_raw_response.generate(
                    **{**image, "model": model, "prompt": f"{prompt} {fault}"}
                )
                seen["usage"] = raw.parse().usage.model_dump()
                seen["images"] = len(raw.parse().data)
            case "image_stream":
                raw = client.images.with_raw_response.generate(stream=True, partial_images=1, **image)
                events = list(raw.parse())
                seen["usage"] = events[-1].usage.model_dump()
                seen["images"] = 1
            case "chat":
                raw = client.chat.completions.with_raw_response.create(
                    model="gpt-5.4-mini", messages=[{"role": "user", "content": prompt}]
                )
                seen["usage"] = raw.parse().usage.model_dump()
            case "chat_stream":
                raw = client.chat.completions.with_raw_response.create(
                    model="gpt-5.4-mini",
                    stream=True,
                    stream_options={"include_usage": True},
                    messages=[{"role": "user", "content": prompt}],
                )
                seen["usage"] = list(raw.parse())[-1].usage.model_dump()
            case "moderation":
                client.images.generate(**{**image, "prompt": f"{prompt} {marker('moderation')}"})
            case "timeout":
                client.with_options(default_headers={"x-tollgate-timeout-s": "0.2"}).images.generate(
                    **{**image, "prompt": f"{prompt} {marker('timeout', delay=3)}"}
                )
            case "cut_stream":
                list(
                    client.chat.completions.create(
                        model="gpt-5.4-mini",
                        stream=True,
                        messages=[{"role": "user", "content": f"{prompt} {marker('cut_stream', upstream='acme')}"}],
                    )
                )
        seen["request_id"] = raw.headers["x-request-id"]
        seen["provider"] = raw.headers["x-tollgate-provider"]
        seen["header_cost"] = raw.headers.get("x-tollgate-cost-usd")
    except openai.APIError:
        pass  # the failures are part of the traffic
    return seen


def expected_cost(seen: dict) -> Decimal:
    """The cost from first principles: the usage the client received, the published prices.
    The Images API's output tokens are image tokens; chat's are text."""
    usage = seen["usage"]
    if seen["kind"].startswith("chat"):
        return (
            usage["prompt_tokens"] * ACME_CHAT["text_input"] + usage["completion_tokens"] * ACME_CHAT["text_output"]
        ) / 1_000_000
    if seen["provider"] == "acme":
        return seen["images"] * ACME_IMAGE[(seen["quality"], seen["size"])]
    return official_cost(usage)


def expected_list_cost(seen: dict) -> Decimal | None:
    """OpenAI's list price for the same usage: its table lists gpt-image-2, not gpt-5.4-mini."""
    return None if seen["kind"].startswith("chat") else official_cost(seen["usage"])


def official_cost(usage: dict) -> Decimal:
    details = usage["input_tokens_details"]
    return (
        details["text_tokens"] * OFFICIAL["text_input"]
        + details["image_tokens"] * OFFICIAL["image_input"]
        + usage["output_tokens"] * OFFICIAL["image_output"]
    ) / 1_000_000


@pytest.mark.timeout(300)
def test_costs_are_exact_and_the_report_adds_up_to_the_nano_dollar(simulator, start_proxy):
    proxy = start_proxy(config(simulator.url))
    database = proxy.config_path.parent / "ledger.db"
    client = proxy.client()
    rng = random.Random(20261126)
    count = 300
    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(lambda index: traffic(client, random.Random(rng.random()), index), range(count)))
    kinds = {entry["kind"] for entry in seen}
    assert {"image_fallback", "timeout", "cut_stream", "moderation", "chat_stream", "image_stream"} <= kinds

    connection = sqlite3.connect(database)
    deadline = time.monotonic() + 30
    while connection.execute("SELECT count(*) FROM ledger WHERE status <> 'started'").fetchone()[0] < count:
        assert time.monotonic() < deadline, "every request reaches the ledger"
        time.sleep(0.2)
    assert connection.execute("SELECT count(*) FROM ledger").fetchone()[0] == count

    rows = {
        request_id: (cost, basis)
        for request_id, cost, basis in connection.execute("SELECT request_id, cost_nanousd, cost_basis FROM ledger")
    }
    charges: dict[str, list[tuple[str, str, int]]] = {}
    listed: dict[str, int | None] = {}  # the list price of each row's usage charge
    for request_id, provider, basis, nano, list_nano in connection.execute(
        "SELECT request_id, provider, cost_basis, cost_nanousd, list_cost_nanousd FROM ledger_charges"
    ):
        charges.setdefault(request_id, []).append((provider, basis, nano))
        if basis == "usage":
            listed[request_id] = list_nano

    answered = [entry for entry in seen if "usage" in entry]
    assert len(answered) > 150
    for entry in answered:
        cost, basis = rows[entry["request_id"]]
        own = [nano for provider, charge_basis, nano in charges[entry["request_id"]] if charge_basis == "usage"]
        assert basis == "usage" and own == [int(expected_cost(entry) * 1_000_000_000)], entry
        assert cost == sum(nano for _, _, nano in charges[entry["request_id"]])  # a row costs the sum of its charges
        list_cost = expected_list_cost(entry)
        assert listed[entry["request_id"]] == (None if list_cost is None else int(list_cost * 1_000_000_000)), entry
        if entry.get("header_cost") is not None:
            assert Decimal(entry["header_cost"]) == Decimal(cost) / 1_000_000_000

    # acme bills failed tries at their estimate: those charges sit under acme, not under openai
    assert any(
        provider == "acme" and basis == "estimate"
        for rows_charges in charges.values()
        for provider, basis, _ in rows_charges
    )

    ledger = SqlLedger(f"sqlite:///{database}")
    with ledger.connect() as reader:
        (everything,) = ledger.spend(reader, [], Filters())
        by_owner = ledger.spend(reader, ["billing_owner", "price_table", "price_source"], Filters())
        by_day_route = ledger.spend(reader, ["day", "route", "surface"], Filters())
    row_total = connection.execute("SELECT COALESCE(SUM(cost_nanousd), 0) FROM ledger").fetchone()[0]
    assert everything.cost_nanousd == row_total
    assert sum(group.cost_nanousd for group in by_owner) == row_total
    assert sum(group.cost_nanousd for group in by_day_route) == row_total
    assert {group.key["price_source"] for group in by_owner if group.cost_nanousd} == {"official", "provider"}
    assert {(g.key["billing_owner"], g.key["price_table"]) for g in by_owner if g.cost_nanousd} == {
        ("openai/org-test", "openai-official"),
        ("acme/acct-7", "acme-2026-11"),
    }
