"""Reads of a ledger at scale: a row by id is found in the days its id says, and still
found where its id says nothing or says otherwise; a read keeps its connection for
the next, and one the database dropped meanwhile is replaced rather than failing."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from proxy.config.schema import LedgerSettings
from proxy.errors import InvalidRequest
from proxy.ledger import Ledger
from proxy.ledger.filters import days_of_id
from proxy.ledger.sql import SqlLedger

from ..databases import postgres_database
from ..rows import OPENAI, charged_row

MADE_NOV_1 = "req_019a3cb6bc00" + "ab" * 8  # 2025-11-01T00:00:00Z, as ids.py writes it


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ledger.db"
    else:
        with postgres_database() as made:
            yield made


def test_an_id_says_the_days_its_row_can_be_in():
    assert days_of_id(MADE_NOV_1) == ("2025-11-01", "2025-11-02")
    assert days_of_id("req_nothex" + "0" * 20) is None
    assert days_of_id("a-clients-own-id") is None


def test_a_row_is_found_by_its_id_whatever_its_id_says(url):
    sql = SqlLedger(url)
    rows = [
        charged_row(MADE_NOV_1, "2025-11-01T00:00:00.004000Z", [(OPENAI, 1)]),
        charged_row("req_019a3cb6bc00" + "cd" * 8, "2025-10-20T00:00:00Z", [(OPENAI, 2)]),  # says otherwise
        charged_row("imported-42", "2025-09-03T00:00:00Z", [(OPENAI, 3)]),  # says nothing
    ]
    with sql.connect() as connection:
        sql.create_schema(connection)
        sql.upsert(connection, [row.record() for row in rows])
    with sql.connect() as connection:
        found = [sql.get(connection, row.request_id) for row in rows]
        assert sql.set_review(connection, "imported-42", "approved", {"reviewer": "ana"})
    assert [row.charges[0].cost_nanousd for row in found] == [1, 2, 3]


async def test_a_kept_connection_the_database_dropped_is_replaced(tmp_path):
    with postgres_database() as url:
        ledger = Ledger(LedgerSettings(url=url, journal_dir=str(tmp_path / "journal"), drain_timeout_s=10))
        try:
            await ledger.start()
            first = await ledger.read(lambda sql, connection: connection.info.backend_pid)
            with psycopg.connect(url, autocommit=True) as admin:  # as a restart of the database would
                admin.execute("SELECT pg_terminate_backend(%s)", (first,))
            second = await ledger.read(lambda sql, connection: connection.info.backend_pid)
            again = await ledger.read(lambda sql, connection: connection.info.backend_pid)
        finally:
            await ledger.close()
    assert second != first and again == second  # replaced, then kept in its turn


async def test_part_of_a_day_in_an_archived_month_is_a_400_that_says_to_give_dates(url, tmp_path):
    ledger = Ledger(LedgerSettings(url=url, journal_dir=str(tmp_path / "journal"), drain_timeout_s=10))
    try:
        await ledger.start()
        await ledger.read(
            lambda sql, connection: connection.cursor().execute(
                "INSERT INTO ledger_archives VALUES ('2025-09', '2025-12-01T00:00:00Z', '[]', 0, 0, 0)"
            )
        )
        with pytest.raises(InvalidRequest, match=r"Give the period's bounds in that month as dates \(YYYY-MM-DD\)"):
            await ledger.spend(["team"], _filters(since="2025-09-03T10:00:00Z"))
        assert await ledger.spend(["team"], _filters(since="2025-09-03")) == []
    finally:
        await ledger.close()


def _filters(**bounds):
    from proxy.ledger import Filters

    return Filters(**bounds)
