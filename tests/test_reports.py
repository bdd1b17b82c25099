"""Spend reports: grouping in the ledger's SQL, exact totals over awkward amounts,
and the three forms (JSON, CSV, table) printed from one report. Rows go into a
real SQLite ledger through SqlLedger."""

from __future__ import annotations

import csv
import io
import time
from decimal import Decimal

import pytest

from proxy.errors import InvalidRequest
from proxy.finance.reports import (
    DEFAULT_GROUP_BY,
    LedgerUnavailable,
    parse_bound,
    parse_group_by,
    read_spend,
    render,
    stranded_journals,
    to_json,
    to_table,
)
from proxy.ledger import GROUPS, Filters, LedgerRow
from proxy.ledger.barrier import Watermarks
from proxy.ledger.sql import SqlLedger

from .rows import ACME, OPENAI, charged_row

# Amounts chosen to break anything that is not exact: one nano-dollar, thirds,
# 0.1 + 0.2, and a trillion nano-dollars plus seven.
ROWS = [
    charged_row("req_1", "2026-11-01T09:00:00.000000Z", [(OPENAI, 1)]),
    charged_row("req_2", "2026-11-01T10:00:00.000000Z", [(OPENAI, 333_333_333)], team="growth"),
    charged_row("req_3", "2026-11-02T00:00:00.000000Z", [(OPENAI, 100_000_000)], team="growth"),
    charged_row("req_4", "2026-11-02T23:59:59.999999Z", [(OPENAI, 200_000_000)], simulated=True),
    charged_row("req_5", "2026-11-03T12:00:00.000000Z", [(ACME, 10**12 + 7)], route="gpt-5.4"),
    # a failed attempt billed by openai, then acme answered: each charge under its own owner
    charged_row("req_6", "2026-11-03T13:00:00.000000Z", [(ACME, 41_185_000), (OPENAI, 25_000)]),
    # refused before any provider billed: a request, but no charge
    charged_row("req_7", "2026-11-03T14:00:00.000000Z", [], status="error"),
]


@pytest.fixture
def ledger_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path}/ledger.db"
    sql = SqlLedger(url)
    with sql.connect() as connection:
        sql.create_schema(connection)
        sql.upsert(connection, [row.record() for row in ROWS])
    return url


def exact_sum(amounts: list[str]) -> Decimal:
    return sum((Decimal(amount) for amount in amounts), Decimal(0))


# --- grouping and totals ----------------------------------------------------------------------


def test_the_total_is_the_exact_sum_of_the_rows(ledger_url):
    shown = to_json(read_spend(ledger_url, ("billing_owner", "price_table"), Filters()))
    assert shown["group_by"] == ["billing_owner", "price_table"]
    assert shown["rows"] == [
        {"billing_owner": "acme/acct-42", "price_table": "acme-2026-11", "requests": 2, "cost_usd": "1000.041185007"},
        {
            "billing_owner": "openai/org-acme",
            "price_table": "openai-official",
            "requests": 6,
            "cost_usd": "0.633358334",
        },
    ]
    assert shown["total_usd"] == "1000.674543341"
    assert Decimal(shown["total_usd"]) == exact_sum([row["cost_usd"] for row in shown["rows"]])


def test_a_billed_failed_attempt_counts_under_its_own_provider(ledger_url):
    rows = to_json(read_spend(ledger_url, ("provider",), Filters(since=parse_bound("2026-11-03T13:00:00Z"))))["rows"]
    assert rows == [
        {"provider": "acme", "requests": 1, "cost_usd": "0.041185"},
        {"provider": "openai", "requests": 2, "cost_usd": "0.000025"},  # req_6's charge, and req_7's zero
    ]


def test_since_is_inclusive_and_until_exclusive(ledger_url):
    def day_rows(since: str | None, until: str | None) -> list[dict]:
        return to_json(read_spend(ledger_url, ("day",), Filters(since=since, until=until)))["rows"]

    assert [row["day"] for row in day_rows("2026-11-02", "2026-11-03")] == ["2026-11-02"]
    assert day_rows("2026-11-02", "2026-11-03")[0] == {"day": "2026-11-02", "requests": 2, "cost_usd": "0.3"}
    # 2026-11-02T01:00+02:00 is 23:00Z the day before: req_3 at midnight UTC is after it
    assert (
        day_rows(parse_bound("2026-11-02T01:00+02:00"), parse_bound("2026-11-02T00:00:00.000001"))[0]["requests"] == 1
    )


def test_every_ledger_group_field_can_be_reported(ledger_url):
    report = read_spend(ledger_url, tuple(GROUPS), Filters())
    shown = to_json(report)
    assert set(shown["rows"][0]) == {*GROUPS, "requests", "cost_usd"}
    assert shown["total_usd"] == "1000.674543341"
    assert {row["simulated"] for row in shown["rows"]} == {True, False}


def test_spend_counts_finished_requests_and_those_in_flight_apart(ledger_url):
    """A request still running has been told no cost: it is not spend, nor counted under
    the provider it was planned for (the answer may come from a fallback)."""
    sql = SqlLedger(ledger_url)
    planned = LedgerRow("req_8", "2026-11-03T15:00:00.000000Z", "images.generate", route="gpt-image-2")
    planned.provider, planned.billing_owner, planned.estimated_cost_nanousd = "openai", "openai/org-acme", 41_000_000
    with sql.connect() as connection:
        sql.upsert(connection, [planned.record()])
    before = to_json(read_spend(ledger_url, ("billing_owner",), Filters(until="2026-11-03T14:30:00Z")))
    report = read_spend(ledger_url, ("billing_owner",), Filters())
    shown = to_json(report)
    assert shown["rows"] == [
        {"billing_owner": "acme/acct-42", "requests": 2, "cost_usd": "1000.041185007"},
        {"billing_owner": "openai/org-acme", "requests": 6, "cost_usd": "0.633358334"},
    ]
    assert shown["in_flight"] == 1 and "in_flight" not in before  # present only when something is running
    assert to_table(report).endswith("(not counted: 1 request(s) still in flight)")
    assert "in flight" not in render(report, "csv")  # the CSV keeps its columns


def test_no_rows_is_a_zero_total(ledger_url):
    shown = to_json(read_spend(ledger_url, ("route",), Filters(since="2030-01-01")))
    assert shown == {"group_by": ["route"], "rows": [], "total_usd": "0"}


# --- the three forms --------------------------------------------------------------------------


def test_csv_has_the_group_fields_requests_and_cost_as_columns(ledger_url):
    report = read_spend(ledger_url, ("route", "team"), Filters())
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    assert list(rows[0]) == ["route", "team", "requests", "cost_usd"]
    assert rows[0] == {"route": "gpt-5.4", "team": "", "requests": "1", "cost_usd": "1000.000000007"}
    as_json = to_json(report)["rows"]
    assert [row["cost_usd"] for row in rows] == [row["cost_usd"] for row in as_json]
    assert exact_sum([row["cost_usd"] for row in rows]) == Decimal(to_json(report)["total_usd"])


def test_json_is_the_report_as_one_compact_document(ledger_url):
    import orjson

    report = read_spend(ledger_url, DEFAULT_GROUP_BY, Filters())
    assert orjson.loads(render(report, "json")) == to_json(report)


def test_the_table_lines_up_and_ends_with_the_total(ledger_url):
    text = to_table(read_spend(ledger_url, ("billing_owner", "price_table"), Filters()))
    lines = text.splitlines()
    assert lines[0].split() == ["billing_owner", "price_table", "requests", "cost_usd"]
    assert lines[-1].split() == ["total", "1000.674543341"]
    assert "openai/org-acme  openai-official" in text
    assert "   0.633358334" in text  # padded to the widest amount: the decimal points line up
    assert len({len(line) for line in lines}) == 1


def test_the_table_shows_a_missing_value_as_a_dash(ledger_url):
    text = to_table(read_spend(ledger_url, ("team",), Filters()))
    assert {line.split()[0] for line in text.splitlines()[2:-2]} == {"-", "growth"}


# --- parsing what callers send ----------------------------------------------------------------


def test_group_fields_are_checked_against_the_ledgers():
    assert parse_group_by(None) == parse_group_by(" ") == DEFAULT_GROUP_BY == ("billing_owner", "price_table")
    assert parse_group_by("day, provider") == ("day", "provider")
    with pytest.raises(InvalidRequest, match="group by any of: billing_owner, price_table, price_source"):
        parse_group_by("day,colour")
    with pytest.raises(InvalidRequest, match="more than once: day"):
        parse_group_by("day,provider,day")


@pytest.mark.parametrize(
    ("given", "bound"),
    [
        ("2026-11-01", "2026-11-01"),
        ("2026-11-01T09:30", "2026-11-01T09:30:00.000000Z"),
        ("2026-11-01T09:30:00Z", "2026-11-01T09:30:00.000000Z"),
        ("2026-11-01T09:30:00.5+02:00", "2026-11-01T07:30:00.500000Z"),
    ],
)
def test_bounds_are_spelled_as_the_ledger_spells_created_at(given, bound):
    assert parse_bound(given) == bound


@pytest.mark.parametrize("given", ["yesterday", "2026-13-01", "01/11/2026", ""])
def test_a_bound_that_is_no_date_is_refused(given):
    with pytest.raises(ValueError, match="not an ISO 8601 date or datetime"):
        parse_bound(given)


# --- reading the database directly --------------------------------------------------------------


def test_a_missing_sqlite_database_is_reported_not_created(tmp_path):
    with pytest.raises(LedgerUnavailable, match="no ledger database at"):
        read_spend(f"sqlite:///{tmp_path}/absent.db", DEFAULT_GROUP_BY, Filters())
    assert not (tmp_path / "absent.db").exists()


def test_a_database_without_a_ledger_is_reported(tmp_path):
    (tmp_path / "empty.db").write_bytes(b"")
    with pytest.raises(LedgerUnavailable, match="cannot read the ledger database"):
        read_spend(f"sqlite:///{tmp_path}/empty.db", DEFAULT_GROUP_BY, Filters())


def test_a_ledger_made_before_the_read_barrier_is_read_as_it_is(ledger_url, tmp_path):
    sql = SqlLedger(ledger_url)
    with sql.connect() as connection:
        connection.execute("DROP TABLE ledger_writers")
        connection.execute("DROP TABLE ledger_reads")
    assert to_json(read_spend(ledger_url, ("route",), Filters()))["total_usd"] == "1000.674543341"
    (tmp_path / "old.000000.jsonl").write_text("{}\n")
    assert [path.name for path in stranded_journals(tmp_path, ledger_url)] == ["old.000000.jsonl"]
    with sql.connect() as connection:
        assert not Watermarks(sql).present(connection)  # a read changes nothing


def test_stranded_journals_are_those_no_live_writer_applies(tmp_path):
    url = f"sqlite:///{tmp_path}/ledger.db"
    sql = SqlLedger(url)
    with sql.connect() as connection:
        sql.create_schema(connection)
        now_us = time.time_ns() // 1000
        Watermarks(sql).mark(connection, "live", caught_up_us=None, heartbeat_us=now_us)
        Watermarks(sql).mark(connection, "stale", caught_up_us=None, heartbeat_us=now_us - 60_000_000)
    journal = tmp_path / "journal"
    assert stranded_journals(journal, url) == []
    journal.mkdir()
    for owner in ("live", "stale", "gone"):
        (journal / f"{owner}.000000.jsonl").write_text("{}\n")
        (journal / f"{owner}.lock").write_text("")
    assert [path.name for path in stranded_journals(journal, url)] == ["gone.000000.jsonl", "stale.000000.jsonl"]
