"""The daily rollup on both databases: whatever rows the writer applies, in whatever
batches, with replays and snapshots out of order, a spend report from the rollup
equals the same report summed from the rows, grouped by any fields, over any period
(whole days from the rollup, the rest of a day from the rows)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.ledger import Filters, rollup, spending
from proxy.ledger.sql import SqlLedger

from ..databases import postgres_database

DAYS = ("2026-10-31", "2026-11-01", "2026-11-02")
SOME = st.sampled_from
MAYBE_TEXT = st.one_of(st.none(), SOME(["a", "b"]))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def sql(request, tmp_path_factory) -> Iterator[SqlLedger]:
    if request.param == "sqlite":
        ledger = SqlLedger(f"sqlite:///{tmp_path_factory.mktemp('rollup')}/ledger.db")
        yield _made(ledger)
        return
    with postgres_database() as url:
        yield _made(SqlLedger(url))


def _made(ledger: SqlLedger) -> SqlLedger:
    with ledger.connect() as connection:
        ledger.create_schema(connection)
    return ledger


@st.composite
def charges(draw) -> dict:
    return {
        "provider": draw(SOME(["openai", "acme", None])),
        "billing_owner": draw(SOME(["openai/org", "acme/acct", "", None])),
        "price_table": draw(SOME(["official", "acme-2026", None])),
        "price_source": draw(SOME(["official", "provider", None])),
        "cost_nanousd": draw(st.integers(0, 10**12)),
        "cost_basis": "usage",
        "list_cost_nanousd": draw(st.one_of(st.none(), st.integers(0, 10**12))),
        "list_price_table": None,
    }


@st.composite
def requests(draw, index: int) -> list[dict]:
    """A request's snapshots in the order its journal holds them: started, then finished,
    then perhaps a later finished snapshot and a replayed started one."""
    day = draw(SOME(DAYS))
    moment = f"{day}T{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}:00.000000Z"
    row = {
        "request_id": f"req_{index}",
        "created_at": moment,
        "surface": draw(SOME(["images.generate", "chat.completions"])),
        "route": draw(MAYBE_TEXT),
        "team": draw(MAYBE_TEXT),
        "key_id": draw(MAYBE_TEXT),
        "upstream_model": draw(st.one_of(st.none(), SOME(["m1", "m2"]))),
        "purpose": draw(st.one_of(st.none(), st.just("launch_check"))),
        "simulated": draw(st.booleans()),
        "provider": draw(SOME(["openai", "acme"])),
        "billing_owner": draw(SOME(["openai/org", "acme/acct", None])),
        "price_table": draw(MAYBE_TEXT),
        "price_source": draw(MAYBE_TEXT),
    }
    started = {**_blank(), **row, "status": "started", "charges": []}
    snapshots = [started]
    for _ in range(draw(st.integers(0, 2))):
        status = draw(SOME(["ok", "error", "abandoned", "client_closed"]))
        snapshots.append({**started, "status": status, "charges": draw(st.lists(charges(), max_size=3))})
    if draw(st.booleans()):
        snapshots.append(started)  # a replay of the first snapshot, after the row finished
    return snapshots


def _blank() -> dict:
    from proxy.ledger import LedgerRow

    return LedgerRow(request_id="", created_at="", surface="").record()


@st.composite
def ledgers(draw) -> list[list[dict]]:
    """Batches as the writer applies them: the requests' snapshots interleaved, each request's in order."""
    pending = [draw(requests(index)) for index in range(draw(st.integers(1, 12)))]
    order = []
    while any(pending):
        lane = draw(SOME([lane for lane in pending if lane]))
        order.append(lane.pop(0))
    batches, start = [], 0
    while start < len(order):
        size = draw(st.integers(1, 6))
        batches.append(order[start : start + size])
        start += size
    return batches


GROUPINGS = st.lists(SOME(sorted(spending.GROUPS)), unique=True, max_size=3)
BOUNDS = SOME([None, "2026-11-01", "2026-11-01T12:00:00.000000Z", "2026-11-02", "2026-11-02T06:30:00.000000Z"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=ledgers(), group_by=GROUPINGS, since=BOUNDS, until=BOUNDS)
def test_spend_from_the_rollup_equals_spend_summed_from_the_rows(sql, batches, group_by, since, until):
    _empty(sql)
    for batch in batches:
        with sql.connect() as connection:
            sql.upsert(connection, batch)
    filters = Filters(since=since, until=until)
    with sql.connect() as connection:
        cursor = connection.cursor()
        from_rollup = sql.spend(connection, group_by, filters)
        from_rows = spending.spend(cursor, group_by, filters, mark=_mark(sql), rolled_up=False, archived=set())
        rows_total = _rows_total(cursor)
        cursor.execute("SELECT COALESCE(SUM(cost_nanousd), 0), COALESCE(SUM(requests), 0) FROM ledger_daily")
        rollup_total = tuple(int(value) for value in cursor.fetchone())
    assert from_rollup == from_rows
    assert rollup_total[0] == rows_total  # the rollup itself: every finished charge, to the nano-dollar


def test_a_request_billed_by_two_providers_counts_once_where_its_groups_merge(sql):
    _empty(sql)
    both = {
        **_blank(),
        "request_id": "req_both",
        "created_at": "2026-11-01T10:00:00.000000Z",
        "status": "ok",
        "route": "gpt-image-2",
        "provider": "openai",
        "charges": [
            {"provider": "acme", "billing_owner": "acme/acct", "cost_nanousd": 5, "price_table": "t"},
            {"provider": "openai", "billing_owner": "openai/org", "cost_nanousd": 7, "price_table": "t"},
        ],
    }
    with sql.connect() as connection:
        sql.upsert(connection, [both])
    whole_day = Filters(since="2026-11-01", until="2026-11-02")
    with sql.connect() as connection:
        (by_route,) = sql.spend(connection, ["route"], whole_day)
        by_provider = sql.spend(connection, ["provider"], whole_day)
        cursor = connection.cursor()
        cursor.execute("SELECT COUNT(*), COUNT(request_id) FROM ledger_daily")
        kept = cursor.fetchone()
    assert (by_route.requests, by_route.cost_nanousd) == (1, 12)
    assert [(group.key["provider"], group.requests, group.cost_nanousd) for group in by_provider] == [
        ("acme", 1, 5),
        ("openai", 1, 7),
    ]
    assert tuple(kept) == (2, 2)  # kept per request, in each of its two groups


def test_a_group_whose_last_request_moved_away_is_removed(sql):
    _empty(sql)
    row = {**_blank(), "request_id": "req_x", "created_at": "2026-11-01T10:00:00.000000Z", "status": "ok"}
    first = {**row, "charges": [{"provider": "a", "cost_nanousd": 1}, {"provider": "b", "cost_nanousd": 2}]}
    again = {**row, "charges": [{"provider": "a", "cost_nanousd": 3}]}  # a later snapshot: one charge
    for batch in ([first], [again]):
        with sql.connect() as connection:
            sql.upsert(connection, batch)
    with sql.connect() as connection:
        cursor = connection.cursor()
        cursor.execute("SELECT provider, request_id, requests, cost_nanousd FROM ledger_daily")
        assert [tuple(found) for found in cursor.fetchall()] == [("a", None, 1, 3)]


def test_the_rollup_bucket_is_the_same_for_equal_groups_and_differs_otherwise():
    key = ("2026-11-01", "r", None, None, "m", "s", "ok", None, False, "o", "t", "src", "p", None)
    assert rollup.bucket(key) == rollup.bucket(tuple(key))
    assert rollup.bucket(key) != rollup.bucket((*key[:-2], "other", None))
    assert rollup.bucket(key) != rollup.bucket((*key[:2], "", *key[3:]))  # '' is not NULL


def _empty(sql: SqlLedger) -> None:
    with sql.connect() as connection:
        for table in ("ledger", "ledger_charges", "ledger_daily"):
            connection.cursor().execute(f"DELETE FROM {table}")


def _mark(sql: SqlLedger) -> str:
    return "%s" if sql.postgres else "?"


def _rows_total(cursor) -> int:
    cursor.execute(
        "SELECT COALESCE(SUM(c.cost_nanousd), 0) FROM ledger l JOIN ledger_charges c "
        "ON c.request_id = l.request_id AND c.day = l.day WHERE l.status <> 'started'"
    )
    return int(cursor.fetchone()[0])
