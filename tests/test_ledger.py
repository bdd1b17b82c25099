"""The ledger on both backends: rows go in through the journal, upserts never move
a row backwards, a dead process's journal is replayed and its unfinished rows
abandoned, and an unavailable database loses nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from proxy.config.schema import LedgerSettings
from proxy.ledger import Charge, Filters, Ledger, LedgerRow, utc_now
from proxy.ledger.journal import Journal

from .databases import postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ledger.db"
    else:
        with postgres_database() as url:
            yield url


def settings(url: str, journal: Path) -> LedgerSettings:
    return LedgerSettings(url=url, journal_dir=str(journal), drain_timeout_s=10)


def started(request_id: str, **fields) -> LedgerRow:
    values = dict(
        surface="images.generate",
        route="gpt-image-2",
        provider="openai",
        billing_owner="openai/org",
        price_table="openai-official",
        price_source="official",
        estimated_cost_nanousd=41_175_000,
    )
    return LedgerRow(request_id=request_id, created_at=utc_now(), **{**values, **fields})


def finish(row: LedgerRow, cost_nanousd: int, provider: str = "openai") -> LedgerRow:
    row.status, row.finished_at, row.http_status, row.cost_basis = "ok", utc_now(), 200, "usage"
    row.cost_nanousd = cost_nanousd
    row.charges = [Charge(provider, f"{provider}/org", "openai-official", "official", cost_nanousd, "usage")]
    return row


async def test_rows_reach_the_database_in_their_latest_state(ledger_url, tmp_path):
    ledger = Ledger(settings(ledger_url, tmp_path / "journal"))
    for index in range(50):
        row = started(f"req_{index}")
        ledger.write(row)
        ledger.write(finish(row, 1_000_000 + index))
    assert ledger.writer.wait_until_applied(10)
    row = await ledger.get("req_7")
    assert (row.status, row.cost_nanousd, row.charges[0].cost_nanousd) == ("ok", 1_000_007, 1_000_007)
    (group,) = await ledger.spend(["provider"], Filters())
    assert (group.requests, group.cost_nanousd) == (50, sum(1_000_000 + i for i in range(50)))
    assert await ledger.close()
    assert not list((tmp_path / "journal").iterdir())  # everything applied: the journal is gone


async def test_a_read_before_the_writer_made_the_tables_finds_no_row_yet(ledger_url, tmp_path):
    ledger = Ledger(settings(ledger_url, tmp_path / "journal"))  # its writer process is only starting
    assert await ledger.get("req_not_yet") is None
    assert await ledger.find(Filters(), 10) == []
    await ledger.close()


async def test_a_replayed_snapshot_never_moves_a_row_backwards_nor_undoes_a_review(ledger_url, tmp_path):
    ledger = Ledger(settings(ledger_url, tmp_path / "journal"))
    early = started("req_r", review_status="pending")
    ledger.write(early)
    done = finish(started("req_r", review_status="pending"), 5)
    ledger.write(done)
    assert ledger.writer.wait_until_applied(10)
    assert await ledger.set_review("req_r", "approved", {"reviewer": "ana"})
    ledger.write(started("req_r", review_status="pending"))  # an old snapshot, replayed
    ledger.write(done)  # the final one again
    assert ledger.writer.wait_until_applied(10)
    row = await ledger.get("req_r")
    assert (row.status, row.review_status, row.review) == ("ok", "approved", {"reviewer": "ana"})
    await ledger.close()


async def test_a_dead_processs_journal_is_replayed_and_its_unfinished_rows_abandoned(ledger_url, tmp_path):
    journal = tmp_path / "journal"
    dead = Ledger(settings(ledger_url, journal))
    assert dead.writer.stop(5)  # its writer stops: nothing of what follows reaches the database
    for index in range(30):
        row = started(f"req_d{index}")
        dead.write(row)
        if index < 25:
            dead.write(finish(row, 2_000_000))
    os.close(dead.journal._lock)  # the process dies: the kernel releases its lock, its files stay

    survivor = Ledger(settings(ledger_url, journal))
    assert survivor.writer.wait_until_applied(10)
    rows = {row.request_id: row for row in await survivor.find(Filters(), limit=100)}
    assert len(rows) == 30
    abandoned = [row for row in rows.values() if row.status == "abandoned"]
    assert len(abandoned) == 5
    for row in abandoned:
        assert (row.cost_basis, row.cost_nanousd) == ("estimate", 41_175_000)
        assert row.charges[0].cost_basis == "estimate"
    (total,) = await survivor.spend([], Filters())
    assert total.cost_nanousd == 25 * 2_000_000 + 5 * 41_175_000
    await survivor.close()
    assert sorted(path.name for path in journal.iterdir()) == []


def test_the_journal_tells_a_restarted_writer_where_to_resume(tmp_path):
    journal = Journal(tmp_path, rotate_bytes=100)
    for _ in range(5):
        journal.append(b"x" * 59 + b"\n")  # 60 bytes: a segment takes two lines
    assert [segment.seq for segment in journal.segments()] == [0, 1, 2]
    assert [journal.position(applied) for applied in (0, 60, 120, 180, 300)] == [
        (0, 0),
        (0, 60),
        (1, 0),
        (1, 60),
        (2, 60),
    ]
    journal.close(remove=True)


async def test_a_writer_killed_outright_is_started_again_and_resumes_where_it_was(ledger_url, tmp_path):
    ledger = Ledger(settings(ledger_url, tmp_path / "journal"))
    for index in range(10):
        ledger.write(finish(started(f"req_k{index}"), 7))
    assert ledger.writer.wait_until_applied(10)
    applied = ledger.writer.bytes_applied
    os.kill(ledger.writer.pid, signal.SIGKILL)
    assert ledger.writer.reap() == -signal.SIGKILL
    for index in range(10, 20):
        ledger.write(finish(started(f"req_k{index}"), 7))  # journaled while no writer runs
    ledger.writer.start()
    assert ledger.writer.wait_until_applied(10)
    assert ledger.writer.bytes_applied > applied
    assert len(await ledger.find(Filters(), limit=100)) == 20
    assert await ledger.close()
    assert not list((tmp_path / "journal").iterdir())


async def test_rows_wait_in_the_journal_while_the_database_is_unavailable(tmp_path):
    database = tmp_path / "ledger.db"
    ledger = Ledger(settings(f"sqlite:///{database}", tmp_path / "journal"))
    assert ledger.writer.wait_until_connected(5)
    blocker = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN EXCLUSIVE")  # nobody else may write until it ends
    for index in range(20):
        ledger.write(finish(started(f"req_b{index}"), 3))
    assert not ledger.writer.wait_until_applied(1.0)
    blocker.execute("ROLLBACK")
    assert ledger.writer.wait_until_applied(60)
    assert len(await ledger.find(Filters(), limit=100)) == 20
    await ledger.close()


def test_money_is_stored_to_the_nano_dollar():
    from proxy.ledger import from_nano, to_nano

    assert to_nano(Decimal("0.041275")) == 41_275_000
    assert to_nano(Decimal("0.0000000004")) == 0 and to_nano(Decimal("0.0000000006")) == 1  # half-even beyond 1e-9
    assert from_nano(41_275_000) == Decimal("0.041275")


def test_a_disabled_ledger_records_nothing_and_says_so_when_read(tmp_path):
    from starlette.testclient import TestClient

    from proxy.config import parse_config
    from proxy.http.app import create_app
    from proxy.serving.gateway import Gateway

    loaded = parse_config(
        f"""
server: {{admin_key: sk-admin}}
ledger: {{enabled: false, url: "sqlite:///{tmp_path}/never.db", journal_dir: {tmp_path}/journal}}
providers:
  p:
    kind: openai
    api_key: k
    billing_owner: o
routes:
  m: {{targets: [{{provider: p, model: gpt-5.4-mini}}]}}
""",
        {},
    )
    app = create_app(lambda: Gateway(loaded, {}, simulated={}))
    with TestClient(app) as client:
        estimate = client.post(
            "/v1/chat/completions", json={"model": "m", "messages": []}, headers={"x-tollgate-estimate-only": "true"}
        )
        assert estimate.status_code == 200
        listing = client.get("/admin/requests", headers={"authorization": "Bearer sk-admin"})
    assert listing.status_code == 503 and listing.json()["error"]["code"] == "ledger_disabled"
    assert not (tmp_path / "never.db").exists() and not (tmp_path / "journal").exists()


def test_a_ledger_made_by_an_older_tollgate_gains_the_newer_fields(ledger_url):
    from proxy.ledger.sql import SqlLedger

    sql = SqlLedger(ledger_url)
    with sql.connect() as connection:
        sql.create_schema(connection)
        connection.cursor().execute("ALTER TABLE ledger DROP COLUMN purpose")
    with sql.connect() as connection:
        sql.create_schema(connection)
        row = started("upgraded", purpose="launch_check")
        sql.upsert(connection, [row.record()])
    with sql.connect() as connection:
        assert sql.get(connection, "upgraded").purpose == "launch_check"


def test_charges_keep_their_list_price_and_an_older_ledger_or_journal_gains_it(ledger_url):
    from proxy.ledger.sql import SqlLedger

    sql = SqlLedger(ledger_url)
    with sql.connect() as connection:
        sql.create_schema(connection)
        for column in ("list_cost_nanousd", "list_price_table"):
            connection.cursor().execute(f"ALTER TABLE ledger_charges DROP COLUMN {column}")
    row = finish(started("listed"), 60_000_000, provider="acme")
    row.charges[0].list_cost_nanousd, row.charges[0].list_price_table = 52_830_000, "openai-official"
    old = finish(started("from-an-old-journal"), 1_000)
    old_record = old.record()
    for charge in old_record["charges"]:  # a journal line written before charges had a list price
        del charge["list_cost_nanousd"], charge["list_price_table"]
    with sql.connect() as connection:
        sql.create_schema(connection)
        sql.upsert(connection, [row.record(), old_record])
    with sql.connect() as connection:
        (charge,) = sql.get(connection, "listed").charges
        (unlisted,) = sql.get(connection, "from-an-old-journal").charges
    assert (charge.list_cost_nanousd, charge.list_price_table, charge.listed_nanousd) == (
        52_830_000,
        "openai-official",
        52_830_000,
    )
    assert (unlisted.list_cost_nanousd, unlisted.listed_nanousd) == (None, 1_000)  # no list price: the charge


def test_spend_groups_carry_the_list_price_beside_the_billed_cost(ledger_url):
    from proxy.ledger.sql import SqlLedger

    sql = SqlLedger(ledger_url)
    marked_up = finish(started("marked-up"), 60_000_000, provider="acme")
    marked_up.charges[0].list_cost_nanousd = 52_830_000
    unlisted = finish(started("unlisted"), 1_000, provider="acme")  # no official price: its list cost is its charge
    official = finish(started("official"), 41_185_000)
    official.charges[0].list_cost_nanousd = 41_185_000
    with sql.connect() as connection:
        sql.create_schema(connection)
        sql.upsert(connection, [row.record() for row in (marked_up, unlisted, official)])
    with sql.connect() as connection:
        groups = {group.key["provider"]: group for group in sql.spend(connection, ["provider"], Filters())}
    assert (groups["acme"].cost_nanousd, groups["acme"].list_cost_nanousd) == (60_001_000, 52_831_000)
    assert (groups["openai"].cost_nanousd, groups["openai"].list_cost_nanousd) == (41_185_000, 41_185_000)
