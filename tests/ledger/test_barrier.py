"""The read barrier on both backends: a read sees every row journaled before it began,
by this process or by another on the same database; a writer that cannot catch up
makes the read a 503 with `retry-after`, within the wait; a writer that stopped or
died is not waited for."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from providers.errors import ProxyError
from proxy.config.schema import LedgerSettings
from proxy.ledger import Filters, Ledger
from proxy.ledger.barrier import LedgerBehind, Watermarks, wait_for_writers

from ..databases import postgres_database
from ..e2e.tcp_relay import TcpRelay
from .test_ledger import finish, started


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ledger.db"
    else:
        with postgres_database() as url:
            yield url


def open_ledger(url: str, journal: Path, *, read_wait_s: float = 5) -> Ledger:
    return Ledger(LedgerSettings(url=url, journal_dir=str(journal), drain_timeout_s=10, read_wait_s=read_wait_s))


async def started_and_caught_up(ledger: Ledger) -> Ledger:
    """Registered, and its writer process up (it takes a moment to start on a busy machine)."""
    await ledger.start()
    assert await ledger.read(lambda sql, connection: sql.get(connection, "req_none"), wait_s=30) is None
    return ledger


def writers(ledger: Ledger) -> set[str]:
    with ledger.sql.connect() as connection:
        return {mark.owner for mark in Watermarks(ledger.sql).live_writers(connection)}


async def test_a_read_sees_every_row_journaled_before_it_began(ledger_url, tmp_path):
    ledger = open_ledger(ledger_url, tmp_path / "journal")
    await ledger.start()
    for index in range(8):  # each read comes at once after its write, as a client's would
        row = started(f"req_{index}")
        ledger.write(row)
        assert (await ledger.get(f"req_{index}")).status == "started"
        ledger.write(finish(row, 1_000_000 + index))
        seen = await ledger.get(f"req_{index}")
        assert (seen.status, seen.cost_nanousd) == ("ok", 1_000_000 + index)
        (group,) = await ledger.spend([], Filters())
        assert (group.requests, group.cost_nanousd) == (index + 1, sum(1_000_000 + i for i in range(index + 1)))
    assert len(await ledger.find(Filters(), 100)) == 8
    assert await ledger.close()


async def test_a_read_waits_for_the_writers_of_every_process_on_the_database(ledger_url, tmp_path):
    """Two replicas, each with its own journal and writer, one database."""
    here, there = open_ledger(ledger_url, tmp_path / "here"), open_ledger(ledger_url, tmp_path / "there")
    await here.start()
    await there.start()
    assert writers(here) == {here.journal.owner, there.journal.owner}
    for index in range(5):
        there.write(finish(started(f"req_t{index}"), 7))
        assert (await here.get(f"req_t{index}")).status == "ok"
    (group,) = await here.spend(["provider"], Filters())
    assert (group.requests, group.cost_nanousd) == (5, 35)
    assert await there.close()
    assert writers(here) == {here.journal.owner}  # stopped cleanly: no longer waited for
    assert await here.close()


async def test_a_writer_that_cannot_catch_up_makes_the_read_a_503_within_the_wait(tmp_path):
    database = tmp_path / "ledger.db"
    ledger = await started_and_caught_up(open_ledger(f"sqlite:///{database}", tmp_path / "journal", read_wait_s=0.5))
    blocker = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN EXCLUSIVE")  # the writer cannot commit; readers still read
    ledger.write(finish(started("req_b"), 3))
    began = time.monotonic()
    with pytest.raises(ProxyError) as behind:
        await ledger.get("req_b")
    assert 0.5 <= time.monotonic() - began < 5  # the wait, and not the 30 s a lock could hold
    error = behind.value
    assert (error.status, error.code, error.headers) == (503, "ledger_behind", {"retry-after": "2"})
    assert "1 ledger writer(s) did not catch up within 0.5s" in error.message and "Retry" in error.message
    blocker.execute("ROLLBACK")
    assert (await ledger.get("req_b")).status == "ok"
    await ledger.close()


async def test_a_replica_cut_off_from_the_database_holds_reads_elsewhere_until_the_wait_ends(tmp_path):
    """On PostgreSQL: one replica's connection to the database is down. A read on the
    other waits for it and answers 503; a read on the cut-off one cannot reach the
    database at all, and says so."""
    with postgres_database() as url:
        relay = TcpRelay(5432)
        cut_off = open_ledger(url.replace(":5432", f":{relay.port}"), tmp_path / "cut", read_wait_s=1)
        reader = open_ledger(url, tmp_path / "reader", read_wait_s=1)
        await started_and_caught_up(cut_off)
        await started_and_caught_up(reader)
        relay.cut()
        cut_off.write(finish(started("req_c"), 5))
        with pytest.raises(ProxyError) as behind:
            await reader.get("req_c")
        assert (behind.value.status, behind.value.code) == (503, "ledger_behind")
        with pytest.raises(ProxyError) as unreachable:
            await cut_off.get("req_c")
        assert (unreachable.value.status, unreachable.value.code) == (503, "ledger_unavailable")
        assert unreachable.value.headers == {"retry-after": "5"} and str(relay.port) not in unreachable.value.message
        relay.restore()  # the cut-off writer reconnects at its next retry, seconds later
        row = await reader.read(lambda sql, connection: sql.get(connection, "req_c"), wait_s=15)
        assert row.status == "ok"
        await cut_off.close()
        await reader.close()
        relay.close()


async def test_a_dead_writer_is_not_waited_for_and_its_replay_forgets_it(ledger_url, tmp_path):
    journal = tmp_path / "journal"
    dead = open_ledger(ledger_url, journal)
    await dead.start()
    dead.writer.kill()  # the writer dies with its parent (SIGKILL): its row stays
    dead.write(finish(started("req_d"), 9))  # only in the journal
    os.close(dead.journal._lock)  # the process dies: its journal is an orphan
    reader = open_ledger(ledger_url, tmp_path / "elsewhere")
    await reader.start()
    assert reader.writer.wait_until_applied(30)
    with reader.sql.connect() as connection, pytest.raises(LedgerBehind) as behind:
        wait_for_writers(reader.sql, connection, wait_s=0.5)  # its heartbeat is recent: it may yet catch up
    assert dead.journal.owner in behind.value.behind
    with reader.sql.connect() as connection:  # ...until the heartbeat is old
        Watermarks(reader.sql).mark(connection, dead.journal.owner, caught_up_us=None, heartbeat_us=0)
    # Not waited for (the wait is only for the reader's own writer, slow on a busy machine);
    # its rows are in no database yet.
    assert await reader.read(lambda sql, connection: sql.get(connection, "req_d"), wait_s=30) is None
    assert dead.journal.owner in {path.stem for path in journal.glob("*.lock")}

    survivor = open_ledger(ledger_url, journal)  # the next start on that journal replays it
    await survivor.start()
    assert (await survivor.get("req_d")).status == "ok"
    assert writers(survivor) == {reader.journal.owner, survivor.journal.owner}
    with survivor.sql.connect() as connection:
        cursor = connection.cursor()
        cursor.execute("SELECT COUNT(*) FROM ledger_writers")
        assert cursor.fetchone()[0] == 2  # the dead writer's row is gone
    await survivor.close()
    await reader.close()
