"""The ledger's tables at scale: on PostgreSQL a partition per month, made before its
first row, which a query bounded in time reads alone; and a ledger an older Tollgate
made (unpartitioned, without a rollup, its charges without their day) upgraded in
place at the next start, every row and cent kept."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator

import psycopg
import pytest

from proxy.ledger import Filters, spending
from proxy.ledger.columns import COLUMNS, TYPES, column_list
from proxy.ledger.filters import where
from proxy.ledger.partitions import attached_months, next_month, this_month
from proxy.ledger.sql import SqlLedger

from ..databases import postgres_database
from ..rows import ACME, OPENAI, charged_row

ROWS = [
    charged_row("req_sep", "2026-09-30T23:59:59.999999Z", [(OPENAI, 1_000)]),
    charged_row("req_oct_1", "2026-10-01T00:00:00.000000Z", [(OPENAI, 20_000), (ACME, 300)]),
    charged_row("req_oct_2", "2026-10-15T12:00:00.000000Z", [(ACME, 4_000)], team="growth"),
    charged_row("req_nov", "2026-11-01T08:00:00.000000Z", [(OPENAI, 50_000)], status="client_closed"),
    charged_row("req_refused", "2026-10-20T08:00:00.000000Z", [], status="error"),
]
OLD_CHARGES = (
    "CREATE TABLE ledger_charges (request_id TEXT NOT NULL, seq INTEGER NOT NULL, provider TEXT, "
    "billing_owner TEXT, price_table TEXT, price_source TEXT, cost_nanousd BIGINT NOT NULL, cost_basis TEXT, "
    "PRIMARY KEY (request_id, seq))"
)


@pytest.fixture
def postgres() -> Iterator[SqlLedger]:
    with postgres_database() as url:
        yield SqlLedger(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_sql(request, tmp_path) -> Iterator[SqlLedger]:
    if request.param == "sqlite":
        yield SqlLedger(f"sqlite:///{tmp_path}/ledger.db")
    else:
        with postgres_database() as url:
            yield SqlLedger(url)


def test_each_month_is_a_partition_of_its_own_made_before_its_first_row(postgres):
    with postgres.connect() as connection:
        postgres.create_schema(connection)
        assert {this_month(), next_month(this_month())} <= attached_months(connection.cursor())
        postgres.upsert(connection, [row.record() for row in ROWS])
    with postgres.connect() as connection:
        cursor = connection.cursor()
        assert {"2026-09", "2026-10", "2026-11"} <= attached_months(cursor)
        cursor.execute("SELECT tableoid::regclass::text, COUNT(*) FROM ledger GROUP BY 1 ORDER BY 1")
        assert cursor.fetchall() == [("ledger_y2026m09", 1), ("ledger_y2026m10", 3), ("ledger_y2026m11", 1)]
        cursor.execute("SELECT tableoid::regclass::text, COUNT(*) FROM ledger_charges GROUP BY 1 ORDER BY 1")
        assert cursor.fetchall() == [
            ("ledger_charges_y2026m09", 1),
            ("ledger_charges_y2026m10", 3),
            ("ledger_charges_y2026m11", 1),
        ]
        assert postgres.get(connection, "req_oct_1").charges[1].provider == "acme"


def test_a_period_reads_only_its_months_partitions(postgres):
    with postgres.connect() as connection:
        postgres.create_schema(connection)
        postgres.upsert(connection, [row.record() for row in ROWS])
    october = Filters(since="2026-10-01T06:00:00.000000Z", until="2026-10-31")
    with postgres.connect() as connection:
        cursor = connection.cursor()
        plans = []
        for sql, params in (
            spending._rows_sql(["billing_owner"], october, "%s"),  # spend at a period's ends
            (
                f"SELECT * FROM ledger WHERE {where(october, alias='', mark='%s')[0]}",
                where(october, alias="", mark="%s")[1],
            ),
        ):
            cursor.execute(f"EXPLAIN {sql}", params)
            plans.append("\n".join(line for (line,) in cursor.fetchall()))
        plan = "\n".join(plans)
    assert "ledger_y2026m10" in plan and "ledger_charges_y2026m10" in plan
    assert "m09" not in plan and "m11" not in plan, plan


def test_two_writers_make_a_new_month_once(postgres):
    with postgres.connect() as connection:
        postgres.create_schema(connection)
    first, second = SqlLedger(postgres.url), SqlLedger(postgres.url)
    holding = first.open()
    first.upsert(holding, [charged_row("req_a", "2027-03-02T00:00:00.000000Z", [(OPENAI, 1)]).record()])
    done = threading.Event()

    def write_second() -> None:
        with second.connect() as connection:  # waits for the first to commit its new month, then uses it
            second.upsert(connection, [charged_row("req_b", "2027-03-03T00:00:00.000000Z", [(OPENAI, 2)]).record()])
        done.set()

    thread = threading.Thread(target=write_second)
    thread.start()
    assert not done.wait(0.5)  # the schema lock holds it while the first writer's transaction is open
    holding.commit()
    holding.close()
    thread.join(10)
    assert done.is_set()
    with postgres.connect() as connection:
        assert [group.requests for group in postgres.spend(connection, [], Filters(since="2027-03-01"))] == [2]


def test_a_writer_that_finds_its_month_gone_makes_it_again_on_the_retry(postgres):
    with postgres.connect() as connection:
        postgres.create_schema(connection)
        postgres.upsert(connection, [ROWS[0].record()])
    with postgres.connect() as connection:
        connection.execute("DROP TABLE ledger_y2026m09, ledger_charges_y2026m09")
    late = charged_row("req_late", "2026-09-12T00:00:00.000000Z", [(OPENAI, 7)])
    with pytest.raises(psycopg.errors.CheckViolation), postgres.connect() as connection:
        postgres.upsert(connection, [late.record()])  # this process still took the month for made
    with postgres.connect() as connection:
        postgres.upsert(connection, [late.record()])
    with postgres.connect() as connection:
        assert postgres.get(connection, "req_late").charges[0].cost_nanousd == 7


def test_an_unpartitioned_ledger_is_partitioned_at_the_next_start_every_row_and_cent_kept(postgres):
    _old_ledger(postgres, ROWS)
    with postgres.connect() as connection:
        postgres.create_schema(connection)
    with postgres.connect() as connection:
        cursor = connection.cursor()
        cursor.execute("SELECT relkind FROM pg_class WHERE relname IN ('ledger', 'ledger_charges')")
        assert [kind for (kind,) in cursor.fetchall()] == ["p", "p"]
        cursor.execute("SELECT to_regclass('ledger_unpartitioned')")
        assert cursor.fetchone()[0] is None
        assert {"2026-09", "2026-10", "2026-11"} <= attached_months(cursor)
        assert postgres.get(connection, "req_oct_1").charges[1].cost_nanousd == 300
    _assert_rollup_matches_rows(postgres)


def test_an_older_sqlite_ledger_gains_the_rollup_and_its_charges_their_day(tmp_path):
    sql = SqlLedger(f"sqlite:///{tmp_path}/ledger.db")
    _old_ledger(sql, ROWS)
    with sql.connect() as connection:
        sql.create_schema(connection)
    with sql.connect() as connection:
        days = connection.execute("SELECT request_id, day FROM ledger_charges ORDER BY request_id, seq").fetchall()
    assert days[0] == ("req_nov", "2026-11-01") and all(day for _, day in days)
    _assert_rollup_matches_rows(sql)
    assert sqlite3.connect(tmp_path / "ledger.db").execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _old_ledger(sql: SqlLedger, rows) -> None:
    """A ledger as Tollgate made it before partitions and the rollup: rows keyed by id
    alone, charges without their day or list price, a (status, owner) index."""
    with sql.connect() as connection:
        cursor = connection.cursor()
        cursor.execute(f"CREATE TABLE ledger ({column_list(COLUMNS, TYPES)}, PRIMARY KEY (request_id))")
        cursor.execute("CREATE INDEX ledger_created_at ON ledger (created_at)")
        cursor.execute("CREATE INDEX ledger_status_owner ON ledger (status, owner)")
        cursor.execute(OLD_CHARGES)
        mark = "%s" if sql.postgres else "?"
        for row in rows:
            values = sql._values(row.record())
            cursor.execute(
                f"INSERT INTO ledger ({', '.join(COLUMNS)}) VALUES ({', '.join([mark] * len(COLUMNS))})", values
            )
            for seq, charge in enumerate(row.charges):
                cursor.execute(
                    f"INSERT INTO ledger_charges VALUES ({', '.join([mark] * 8)})",
                    (
                        row.request_id,
                        seq,
                        charge.provider,
                        charge.billing_owner,
                        charge.price_table,
                        charge.price_source,
                        charge.cost_nanousd,
                        charge.cost_basis,
                    ),
                )


def _assert_rollup_matches_rows(sql: SqlLedger) -> None:
    mark = "%s" if sql.postgres else "?"
    with sql.connect() as connection:
        cursor = connection.cursor()
        for group_by in ([], ["billing_owner", "price_source"], ["day", "route", "status"], ["team"]):
            from_rollup = sql.spend(connection, group_by, Filters())
            from_rows = spending.spend(cursor, group_by, Filters(), mark=mark, rolled_up=False, archived=set())
            assert from_rollup == from_rows
        (total,) = sql.spend(connection, [], Filters())
    assert (total.requests, total.cost_nanousd) == (5, 75_300)
