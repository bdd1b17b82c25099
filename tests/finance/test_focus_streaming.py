"""The FOCUS export at scale, on both databases: the daily lines summed in SQL a day at
a time are the lines summed from each row in Python, for random rows and periods;
an export is written as it is read (a chunk of lines, or a day's sums, held at a
time), and PostgreSQL's rows come through a server-side cursor."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.finance.focus import focus_chunks, focus_csv, focus_daily_chunks
from proxy.finance.focus.lines import charge_lines, daily_lines
from proxy.ledger import Charge, Filters, LedgerRow
from proxy.ledger.charge_sums import days_of_charges
from proxy.ledger.sql import SqlLedger

from ..databases import postgres_database

IMAGE = {"model": "gpt-image-2", "item": "image 1024x1024 low", "quantity": 2, "unit_usd": "0.009"}
TOKENS = {"model": "gpt-5.4", "item": "text_input tokens", "quantity": 50, "unit_usd": "0.000005"}
SOME = st.sampled_from


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def sql(request, tmp_path_factory) -> Iterator[SqlLedger]:
    if request.param == "sqlite":
        yield _made(SqlLedger(f"sqlite:///{tmp_path_factory.mktemp('focus')}/ledger.db"))
        return
    with postgres_database() as url:
        yield _made(SqlLedger(url))


def _made(ledger: SqlLedger) -> SqlLedger:
    with ledger.connect() as connection:
        ledger.create_schema(connection)
    return ledger


CHOICES = {
    "day": ["2026-10-31", "2026-11-01", "2026-11-02"],
    "surface": ["images.generate", "chat.completions"],
    "status": ["ok", "client_closed", "abandoned"],
    "route": ["gpt-image-2", "gpt-5.4", None],
    "route_owner": ["platform", None],
    "team": ["growth", "search", None],
    "key_id": ["web", "batch"],
    "provider": ["openai", "acme"],
    "upstream_model": ["gpt-image-2", "gpt-5.4", None],
    "images": [None, 1, 2],
    "size": [None, "1024x1024"],
    "quality": [None, "low"],
    "prompt_version": [None, "v7"],
    "review_status": ["not_required", "pending"],
    "upstream_request_id": [None, "up_shared", "up_own"],
    "simulated": [False, True],
    "cost_lines": [[], [IMAGE], [TOKENS], [TOKENS, IMAGE]],
    "payers": [[], ["same"], ["openai"], ["acme", "same"]],
    "table": ["official", "acme-2026"],
    "source": ["official", None],
    "basis": ["usage", "estimate"],
    "list": [None, 7_000],
    "list_table": [None, "official"],
}


@st.composite
def ledgers(draw) -> list[LedgerRow]:
    """Rows alike but for a field or two each, so that many share a day's line and some do not."""
    usual = {name: draw(SOME(values)) for name, values in CHOICES.items()}
    written = []
    for index in range(draw(st.integers(0, 24))):
        varied = draw(st.sets(SOME(sorted(CHOICES)), max_size=3))
        fields = {name: draw(SOME(CHOICES[name])) if name in varied else value for name, value in usual.items()}
        written.append(_row(index, fields, cost=draw(st.integers(0, 10**10))))
    return written


def _row(index: int, fields: dict, *, cost: int) -> LedgerRow:
    day, payers = fields.pop("day"), fields.pop("payers")
    table, source, basis = fields.pop("table"), fields.pop("source"), fields.pop("basis")
    listed, list_table = fields.pop("list"), fields.pop("list_table")
    if fields["upstream_request_id"] == "up_own":
        fields["upstream_request_id"] = f"up_{index}"
    row = LedgerRow(f"req_{index:03d}", f"{day}T{index % 24:02d}:00:00.250000Z", **fields)
    for payer in payers:
        payer = fields["provider"] if payer == "same" else payer
        row.charges.append(Charge(payer, f"{payer}/org", table, source, cost, basis, listed, list_table))
    return row


BOUNDS = SOME([None, "2026-11-01", "2026-11-01T09:30:00.000000Z", "2026-11-02T12:00:00.000000Z"])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(written=ledgers(), since=BOUNDS, until=BOUNDS)
def test_daily_lines_summed_in_sql_are_the_lines_summed_from_each_row(sql, written, since, until):
    with sql.connect() as connection:
        for table in ("ledger", "ledger_charges", "ledger_daily"):
            connection.cursor().execute(f"DELETE FROM {table}")
        sql.upsert(connection, [row.record() for row in written])
    filters = Filters(since=since, until=until)
    with sql.connect() as connection:
        from_rows = "".join(focus_chunks(sql.each(connection, filters), daily=True))
        summed = "".join(focus_daily_chunks(days_of_charges(sql, connection, filters)))
    assert summed == from_rows  # the same lines, in the same order


@pytest.mark.parametrize(
    ("upstream_ids", "payers", "shared"),
    [
        ((None, "up_x"), [["same"], ["same"]], ("", "")),  # one without an upstream id: none is shared
        (("up_x", "up_x"), [["same"], ["same"]], ("", "up_x")),
        (("up_x", None), [["same", "same"], []], ("req_000", "up_x")),  # one request's two charges
    ],
)
def test_a_summed_line_keeps_an_id_only_where_every_charge_in_it_has_that_one(sql, upstream_ids, payers, shared):
    usual = {name: values[0] for name, values in CHOICES.items()}
    written = [
        _row(index, {**usual, "upstream_request_id": upstream, "payers": paid}, cost=10)
        for index, (upstream, paid) in enumerate(zip(upstream_ids, payers, strict=True))
    ]
    with sql.connect() as connection:
        for table in ("ledger", "ledger_charges", "ledger_daily"):
            connection.cursor().execute(f"DELETE FROM {table}")
        sql.upsert(connection, [row.record() for row in written])
    with sql.connect() as connection:
        summed = "".join(focus_daily_chunks(days_of_charges(sql, connection, Filters())))
        from_rows = "".join(focus_chunks(sql.each(connection, Filters()), daily=True))
    (line,) = csv.DictReader(io.StringIO(summed))
    assert (line["x_RequestId"], line["x_UpstreamRequestId"]) == shared
    assert summed == from_rows  # the same lines, in the same order


def test_a_day_with_charges_from_an_older_ledger_is_read_row_by_row(sql):
    row = LedgerRow("req_old", "2026-11-01T10:00:00.000000Z", "images.generate", status="ok", provider="openai")
    row.cost_lines = [IMAGE]
    row.charges = [Charge("openai", "openai/org", "official", "official", 18_000_000, "usage")]
    with sql.connect() as connection:
        for table in ("ledger", "ledger_charges", "ledger_daily"):
            connection.cursor().execute(f"DELETE FROM {table}")
        sql.upsert(connection, [row.record()])
        connection.cursor().execute("UPDATE ledger_charges SET priced_quantity = NULL, priced_unit = NULL")
    with sql.connect() as connection:
        (day,) = days_of_charges(sql, connection, Filters(since="2026-11-01", until="2026-11-02"))
        assert day.sums is None
        (line,) = csv.DictReader(io.StringIO("".join(focus_daily_chunks([day]))))
    assert (line["PricingQuantity"], line["PricingUnit"], line["x_RequestId"]) == ("2.0", "Images", "req_old")


def test_an_export_writes_its_first_lines_before_it_has_read_every_row():
    read = []

    def ledger_rows() -> Iterator[LedgerRow]:
        for index in range(5_000):
            read.append(index)
            row = LedgerRow(f"req_{index}", "2026-11-01T10:00:00.000000Z", "chat.completions", status="ok")
            row.charges = [Charge("openai", "openai/org", "official", "official", 1, "usage")]
            yield row

    chunks = focus_chunks(ledger_rows())
    first = next(chunks)
    assert first.startswith("AvailabilityZone,") and len(read) <= 500  # one chunk of lines, not the 5,000
    assert "".join([first, *chunks]) == focus_csv(ledger_rows())


def test_a_daily_export_holds_one_days_sums_at_a_time():
    read = []

    def ledger_rows() -> Iterator[LedgerRow]:
        for index in range(40):
            read.append(index)
            row = LedgerRow(f"req_{index}", f"2026-11-{index // 4 + 1:02d}T10:00:00Z", "chat.completions", status="ok")
            row.charges = [Charge("openai", "openai/org", "official", "official", 1, "usage")]
            yield row

    days = daily_lines(charge_lines(ledger_rows()))
    first = next(days)
    assert (first.requests, len(read)) == (4, 5)  # the first day is written once the second begins
    assert [line.requests for line in days] == [4] * 9


def test_rows_are_read_a_batch_at_a_time(sql):
    with sql.connect() as connection:
        for table in ("ledger", "ledger_charges", "ledger_daily"):
            connection.cursor().execute(f"DELETE FROM {table}")
        many = [
            LedgerRow(f"req_{index:05d}", f"2026-11-01T10:{index // 60 % 60:02d}:{index % 60:02d}Z", "embeddings")
            for index in range(2_500)
        ]
        for row in many:
            row.status, row.charges = "ok", [Charge("openai", "openai/org", "t", "official", 1, "usage")]
        sql.upsert(connection, [row.record() for row in many])
    built = []
    original = sql._row
    sql._row = lambda record: built.append(1) or original(record)  # type: ignore[method-assign]
    try:
        with sql.connect() as connection:
            rows_read = sql.each(connection, Filters(), batch=1000)
            first = next(rows_read)
            assert first.charges and len(built) == 1000  # one batch, with its charges
            if sql.postgres:  # the database holds the rest: a server-side cursor, not a result in memory
                cursor = connection.cursor()
                cursor.execute("SELECT name FROM pg_cursors")
                assert [name for (name,) in cursor.fetchall()] == ["tollgate_each"]
            assert sum(1 for _ in rows_read) == 2_499
    finally:
        del sql._row
