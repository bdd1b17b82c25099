"""Read your own writes, through a real `tollgate serve`: every admin read made the
moment an answer arrives — one row, the row list, a review, spend as JSON, CSV and
FOCUS, and `tollgate spend` on the proxy's database — sees that answer, on SQLite
and PostgreSQL, with one replica and with two. Nothing waits between the answer and
the read; the counts come from what the clients were told (the response headers)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from decimal import Decimal

import httpx
import orjson
import pytest

from ..databases import postgres_database
from .configs import JSON_LOGS, ConfigFile, acme_on, acme_price_table, key, openai_on, route, target
from .harness import CLIENT_KEY, Proxy, marker, run_command

ADMIN_KEY = "adm-ryw-51e0c2"


def config(simulator_url: str) -> ConfigFile:
    """openai first, acme (its own table) as the fallback; image rows wait for review."""
    acme_images = {"image": {"low": {"1024x1024": Decimal("0.009")}}}
    return ConfigFile(
        server={"admin_key": "${TOLLGATE_ADMIN_KEY}", "log": JSON_LOGS},
        price_tables={"acme-2026-11": acme_price_table(**{"gpt-image-2": acme_images})},
        providers={"openai": openai_on(simulator_url), "acme": acme_on(simulator_url, price_table="acme-2026-11")},
        routes={
            "gpt-image-2": route(
                target("openai", "gpt-image-2"),
                fallbacks=[target("acme", "gpt-image-2")],
                owner="platform-team",
                retries=0,
                review="required",
            )
        },
        keys=[key("web-app", CLIENT_KEY, "growth")],
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_env(request) -> dict[str, str]:
    """The proxy's environment: its ledger in SQLite (in its folder) or in a fresh PostgreSQL database."""
    env = {"TOLLGATE_ADMIN_KEY": ADMIN_KEY}
    if request.param == "sqlite":
        yield env
        return
    with postgres_database() as url:
        yield {**env, "TOLLGATE_LEDGER_URL": url}


def admin(proxy: Proxy) -> httpx.Client:
    return httpx.Client(base_url=proxy.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)


def answer(proxy: Proxy, *, fail_openai: bool = False) -> httpx.Headers:
    """One image, and what the client was told about it; with `fail_openai`, openai
    answers 500 and the fallback, acme, answers instead."""
    prompt = f"a lighthouse {marker('server_error', upstream='openai') if fail_openai else marker()}"
    raw = proxy.client().images.with_raw_response.generate(
        model="gpt-image-2", prompt=prompt, quality="low", size="1024x1024"
    )
    return raw.headers


def told(answers: list[httpx.Headers]) -> dict[str, tuple[int, Decimal]]:
    """Requests and cost per billing owner, as the response headers said."""
    counts = Counter(headers["x-tollgate-billing-owner"] for headers in answers)
    costs: dict[str, Decimal] = {}
    for headers in answers:
        owner = headers["x-tollgate-billing-owner"]
        costs[owner] = costs.get(owner, Decimal(0)) + Decimal(headers["x-tollgate-cost-usd"])
    return {owner: (counts[owner], costs[owner]) for owner in counts}


def spend_by_owner(document: dict) -> dict[str, tuple[int, Decimal]]:
    return {row["billing_owner"]: (row["requests"], Decimal(row["cost_usd"])) for row in document["rows"]}


def test_a_row_and_its_review_read_at_once_after_the_answer(simulator, start_proxy, ledger_env):
    proxy = start_proxy(config(simulator.url), env=ledger_env)
    with admin(proxy) as client:
        for index in range(6):  # every third answer comes from the fallback
            headers = answer(proxy, fail_openai=index % 3 == 2)
            request_id = headers["x-request-id"]
            if index % 2 == 0:
                read = client.get(f"/admin/requests/{request_id}")
            else:
                read = client.post(f"/admin/requests/{request_id}/review", json={"status": "approved", "reviewer": "a"})
            assert read.status_code == 200, read.text
            row = read.json()
            assert (row["status"], row["provider"], row["billing_owner"], row["cost_usd"]) == (
                "ok",
                headers["x-tollgate-provider"],
                headers["x-tollgate-billing-owner"],
                headers["x-tollgate-cost-usd"],
            )
            assert row["provider"] == ("acme" if index % 3 == 2 else "openai")
            assert len(row["attempts"]) == (2 if index % 3 == 2 else 1)
            assert row["review_status"] == ("pending" if index % 2 == 0 else "approved")


def test_spend_read_at_once_after_each_answer_is_what_the_clients_were_told(simulator, start_proxy, ledger_env):
    """Seven answers, three from the fallback; after each, at once, one of the reports."""
    proxy = start_proxy(config(simulator.url), env=ledger_env)
    answers: list[httpx.Headers] = []
    with admin(proxy) as client:
        for index in range(7):
            answers.append(answer(proxy, fail_openai=index in (1, 3, 5)))
            expected = told(answers)
            if index in (0, 5, 6):
                spend = client.get("/admin/spend", params={"group_by": "billing_owner"}).json()
                assert spend_by_owner(spend) == expected and "in_flight" not in spend
                total = sum(Decimal(headers["x-tollgate-cost-usd"]) for headers in answers)
                assert Decimal(spend["total_usd"]) == total
            elif index == 1:
                as_csv = client.get("/admin/spend", params={"group_by": "billing_owner", "format": "csv"}).text
                lines = csv.DictReader(io.StringIO(as_csv))
                shown = {line["billing_owner"]: (int(line["requests"]), Decimal(line["cost_usd"])) for line in lines}
                assert shown == expected
            elif index == 2:
                focus = list(csv.DictReader(io.StringIO(client.get("/admin/spend", params={"format": "focus"}).text)))
                assert len(focus) == 3
                billed = {
                    owner: sum(Decimal(line["BilledCost"]) for line in focus if line["BillingAccountId"] == owner)
                    for owner in expected
                }
                assert billed == {owner: cost for owner, (_, cost) in expected.items()}
            elif index == 3:
                rows = client.get("/admin/requests", params={"limit": 1000}).json()["data"]
                assert {row["request_id"] for row in rows} == {headers["x-request-id"] for headers in answers}
                assert Counter((row["status"], row["provider"]) for row in rows) == {
                    ("ok", "openai"): 2,
                    ("ok", "acme"): 2,
                }
            else:
                cli = run_command(proxy, "spend", "--by", "billing_owner", "--format", "json", env=ledger_env)
                assert cli.returncode == 0, cli.stderr
                assert spend_by_owner(orjson.loads(cli.stdout)) == expected
                assert "journal file(s)" not in cli.stderr  # a running proxy's journal is waited for
    assert (expected["openai/org-test"][0], expected["acme/acct-7"]) == (4, (3, Decimal("0.027")))


@pytest.fixture(params=["two serves on PostgreSQL", "--workers 2 on SQLite"])
def replicas(request, simulator, start_proxy) -> list[Proxy]:
    """Two processes, each with its own journal and writer, on one ledger database."""
    env = {"TOLLGATE_ADMIN_KEY": ADMIN_KEY}
    if request.param == "--workers 2 on SQLite":  # the kernel spreads connections over the two workers
        one = start_proxy(config(simulator.url), "--workers", "2", env=env)
        yield [one, one]
        return
    with postgres_database() as url:
        yield [start_proxy(config(simulator.url), env={**env, "TOLLGATE_LEDGER_URL": url}) for _ in range(2)]


def test_a_read_on_one_replica_sees_what_another_answered(replicas):
    answers = []
    for index in range(8):
        answered_by, read_on = replicas[index % 2], replicas[(index + 1) % 2]
        headers = answer(answered_by, fail_openai=index % 4 == 3)
        answers.append(headers)
        with admin(read_on) as client:
            row = client.get(f"/admin/requests/{headers['x-request-id']}")
        assert row.status_code == 200, row.text
        assert (row.json()["status"], row.json()["provider"]) == ("ok", headers["x-tollgate-provider"])

    answers += [answer(replicas[index % 2]) for index in range(6)]
    with admin(replicas[0]) as client:
        spend = client.get("/admin/spend", params={"group_by": "billing_owner"}).json()
    expected = told(answers)
    assert (expected["openai/org-test"][0], expected["acme/acct-7"][0]) == (12, 2)
    assert spend_by_owner(spend) == expected
