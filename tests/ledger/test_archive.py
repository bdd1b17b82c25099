"""`tollgate ledger archive --before YYYY-MM` on both databases: whole months leave the
ledger for gzip files that parse and hold exactly what left (every charge as a FOCUS
line, every row as the journal holds it); spend over whole days still counts them
(the rollup keeps them); a row of an archived month is answered "archived"; and a
month still being written, or with a request still running, is refused untouched."""

from __future__ import annotations

import datetime as dt
import gzip
import secrets
from collections.abc import Iterator
from decimal import Decimal

import orjson
import pytest

from proxy.cli import main
from proxy.finance.archive import archive_before, read_focus_totals
from proxy.ledger import ArchivedPeriod, Filters, LedgerRow, SqlLedger
from proxy.ledger.archive import ArchiveRefused, archived, archived_month_of
from proxy.ledger.partitions import attached_months, next_month, this_month

from ..databases import postgres_database
from ..rows import ACME, OPENAI, charged_row


def months_ago(count: int) -> str:
    month = this_month()
    year, number = int(month[:4]), int(month[5:]) - count
    while number < 1:
        year, number = year - 1, number + 12
    return f"{year:04d}-{number:02d}"


OLDEST, OLDER, LAST = months_ago(3), months_ago(2), months_ago(1)


def tollgate_id(created_at: str) -> str:
    """An id as the proxy makes it (ids.py): the time it was made, then random hex."""
    moment = dt.datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    return f"req_{int(moment.timestamp() * 1000):012x}{secrets.token_hex(8)}"


def row_at(created_at: str, charges, **fields) -> LedgerRow:
    return charged_row(tollgate_id(created_at), created_at, charges, **fields)


def ledger_rows() -> list[LedgerRow]:
    return [
        row_at(f"{OLDEST}-01T00:00:00.000000Z", [(OPENAI, 41_175_000)], team="growth"),
        row_at(f"{OLDEST}-15T09:30:00.000000Z", [(ACME, 18_000_000), (OPENAI, 25_000)]),
        row_at(f"{OLDEST}-20T10:00:00.000000Z", [], status="error"),  # nobody billed it: no FOCUS line
        row_at(f"{OLDER}-28T23:59:59.999999Z", [(OPENAI, 1)]),
        row_at(f"{LAST}-02T00:00:00.000000Z", [(OPENAI, 7_000_000)]),
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
def sql(request, tmp_path) -> Iterator[SqlLedger]:
    if request.param == "sqlite":
        yield _made(SqlLedger(f"sqlite:///{tmp_path}/ledger.db"))
        return
    with postgres_database() as url:
        yield _made(SqlLedger(url))


def _made(ledger: SqlLedger) -> SqlLedger:
    with ledger.connect() as connection:
        ledger.create_schema(connection)
    return ledger


def test_archived_months_leave_for_files_that_hold_exactly_what_left(sql, tmp_path):
    rows = ledger_rows()
    with sql.connect() as connection:
        sql.upsert(connection, [row.record() for row in rows])
    period = Filters(since=f"{OLDEST}-01", until=f"{next_month(LAST)}-01")
    with sql.connect() as connection:
        before = sql.spend(connection, ["billing_owner", "day"], period)

    done = archive_before(sql.url, LAST, tmp_path / "archive", wait_s=None, say=lambda _: None)

    assert [archived_month.month.month for archived_month in done] == [OLDEST, OLDER]
    oldest = done[0]
    assert (oldest.month.rows, oldest.month.charges, oldest.month.cost_nanousd) == (3, 3, 59_200_000)
    focus, kept_rows = oldest.files
    assert read_focus_totals(focus) == (3, Decimal("0.0592"))
    with gzip.open(kept_rows) as lines:
        back = [LedgerRow.from_record(orjson.loads(line)) for line in lines]
    assert [row.record() for row in back] == [row.record() for row in rows[:3]]  # every field, oldest first
    with sql.connect() as connection:
        assert [sql.get(connection, row.request_id) for row in rows[:4]] == [None] * 4
        assert sql.get(connection, rows[4].request_id) is not None  # the month before LAST stays
        assert sql.spend(connection, ["billing_owner", "day"], period) == before  # whole days: the rollup keeps them
        assert archived(sql, connection) == {
            OLDEST: [f"ledger-{OLDEST}.focus.csv.gz", f"ledger-{OLDEST}.rows.jsonl.gz"],
            OLDER: [f"ledger-{OLDER}.focus.csv.gz", f"ledger-{OLDER}.rows.jsonl.gz"],
        }
        assert archived_month_of(sql, connection, rows[3].request_id)[0] == OLDER  # its last microsecond too
        assert archived_month_of(sql, connection, rows[4].request_id) is None
        with pytest.raises(ArchivedPeriod, match="archived"):  # part of a day: the rows are gone
            sql.spend(connection, [], Filters(since=f"{OLDEST}-15T12:00:00Z"))
        if sql.postgres:
            cursor = connection.cursor()
            assert not {OLDEST, OLDER} & attached_months(cursor)
            cursor.execute("SELECT to_regclass(%s)", (f"ledger_y{OLDEST[:4]}m{OLDEST[5:]}",))
            assert cursor.fetchone()[0] is None  # dropped: the files are the archive
    assert archive_before(sql.url, LAST, tmp_path / "archive", wait_s=None, say=lambda _: None) == []


def test_postgresql_keeps_the_detached_partitions_when_asked(tmp_path):
    with postgres_database() as url:
        sql = _made(SqlLedger(url))
        with sql.connect() as connection:
            sql.upsert(connection, [row.record() for row in ledger_rows()])
        archive_before(url, OLDER, tmp_path, keep_tables=True, wait_s=None, say=lambda _: None)
        with sql.connect() as connection:
            cursor = connection.cursor()
            cursor.execute(f"SELECT COUNT(*) FROM archived_ledger_y{OLDEST[:4]}m{OLDEST[5:]}")
            assert cursor.fetchone()[0] == 3
            assert OLDEST not in attached_months(cursor)


def test_a_month_with_a_request_still_running_is_refused_and_kept_whole(sql, tmp_path):
    running = row_at(f"{OLDEST}-03T08:00:00.000000Z", [])
    running.status = "started"
    with sql.connect() as connection:
        sql.upsert(connection, [row.record() for row in [*ledger_rows(), running]])
    with pytest.raises(ArchiveRefused, match="still running"):
        archive_before(sql.url, LAST, tmp_path, wait_s=None, say=lambda _: None)
    with sql.connect() as connection:
        assert sql.get(connection, running.request_id) is not None
        assert archived(sql, connection) == {}


def test_the_month_still_being_written_cannot_be_archived(sql, tmp_path):
    with pytest.raises(ArchiveRefused, match=f"give --before {this_month()} or earlier"):
        archive_before(sql.url, next_month(this_month()), tmp_path, wait_s=None)


def test_the_command_archives_and_says_what_it_moved(tmp_path, capsys):
    ledger = tmp_path / "ledger.db"
    sql = _made(SqlLedger(f"sqlite:///{ledger}"))
    with sql.connect() as connection:
        sql.upsert(connection, [row.record() for row in ledger_rows()])
    config = tmp_path / "config.yaml"
    config.write_text(
        f"ledger: {{url: 'sqlite:///{ledger}', journal_dir: '{tmp_path}/journal'}}\n"
        "providers: {openai: {kind: openai, api_key: sk-x, billing_owner: o, price_table: openai-official}}\n"
        "routes: {m: {targets: [{provider: openai, model: gpt-5.4}]}}\n"
    )
    code = main(["ledger", "archive", "--config", str(config), "--before", OLDER, "--to", str(tmp_path / "out")])
    assert code == 0
    assert f"{OLDEST}: 3 rows, 3 charges, 0.0592 USD -> ledger-{OLDEST}.focus.csv.gz" in capsys.readouterr().out
    assert main(["ledger", "archive", "--config", str(config), "--before", "2026-13"]) == 2
    assert "is not a month: write it as YYYY-MM" in capsys.readouterr().err
