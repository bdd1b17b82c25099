"""Nothing lost: a SIGTERM, a `kill -9` of the proxy, or the database being down
for a minute — each shown with a count of ledger rows before and after."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import psycopg
import pytest

from ..databases import postgres_database
from .configs import routed
from .harness import marker, requests_in_flight
from .tcp_relay import TcpRelay


def rows_in(url: str, **where: str) -> int:
    clause = " AND ".join(f"{key} = %s" for key in where) or "TRUE"
    with psycopg.connect(url) as connection:
        exists = connection.execute("SELECT to_regclass('ledger')").fetchone()[0]
        if exists is None:
            return 0
        return connection.execute(f"SELECT count(*) FROM ledger WHERE {clause}", list(where.values())).fetchone()[0]


def eventually(check, timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def chat(proxy, text: str = "hi") -> str:
    reply = proxy.client().chat.completions.create(model="gpt-5.4-mini", messages=[{"role": "user", "content": text}])
    return reply.choices[0].message.content


@pytest.fixture
def ledger_db():
    with postgres_database() as url:
        yield url


def test_sigterm_drains_requests_in_flight_and_every_row_reaches_the_database(simulator, start_proxy, ledger_db):
    proxy = start_proxy(routed(simulator.url), env={"TOLLGATE_LEDGER_URL": ledger_db})
    for _ in range(30):
        assert chat(proxy)
    with ThreadPoolExecutor(6) as pool:
        in_flight = [pool.submit(chat, proxy, f"slow {marker(delay=3)}") for _ in range(6)]
        assert eventually(lambda: requests_in_flight(proxy) == 6)  # a request not yet arrived would be refused
        proxy.process.send_signal(signal.SIGTERM)
        assert all(future.result() for future in in_flight)
    assert proxy.process.wait(20) == 0
    assert rows_in(ledger_db) == 36 and rows_in(ledger_db, status="ok") == 36
    assert not list(proxy.config_path.parent.glob("tollgate-journal/*.jsonl"))


def test_kill_9_loses_no_row_and_a_request_cut_off_is_abandoned_at_its_estimate(simulator, start_proxy, ledger_db):
    relay = TcpRelay(5432)
    config = routed(simulator.url)
    proxy = start_proxy(config, env={"TOLLGATE_LEDGER_URL": ledger_db.replace(":5432", f":{relay.port}")})
    assert eventually(lambda: rows_in(ledger_db) == 0)  # the schema exists: the writer is connected
    relay.cut()  # rows can only reach the journal from now on
    for _ in range(20):
        assert chat(proxy)
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(chat, proxy, f"slow {marker(delay=5)}")
        time.sleep(0.5)
        proxy.process.send_signal(signal.SIGKILL)
        with pytest.raises(openai.APIConnectionError):  # the proxy died under it
            in_flight.result()
    assert rows_in(ledger_db) == 0
    relay.restore()

    restarted = start_proxy(config, env={"TOLLGATE_LEDGER_URL": ledger_db}, folder=proxy.config_path.parent)
    # The killed proxy's writer may outlive it for a moment and apply its journal as it was,
    # the cut-off request still `started`, before the restarted proxy's writer replays that
    # journal and abandons it: 21 rows, then the abandonment.
    assert eventually(lambda: rows_in(ledger_db) == 21 and rows_in(ledger_db, status="abandoned") == 1)
    assert rows_in(ledger_db, status="ok") == 20
    with psycopg.connect(ledger_db) as connection:
        status, basis, cost, estimate = connection.execute(
            "SELECT status, cost_basis, cost_nanousd, estimated_cost_nanousd FROM ledger WHERE status <> 'ok'"
        ).fetchone()
    assert (status, basis) == ("abandoned", "estimate") and cost == estimate > 0
    restarted.stop()
    relay.close()


@pytest.mark.timeout(240)
def test_a_database_down_for_a_minute_loses_no_row(simulator, start_proxy, ledger_db):
    relay = TcpRelay(5432)
    proxy = start_proxy(
        routed(simulator.url), env={"TOLLGATE_LEDGER_URL": ledger_db.replace(":5432", f":{relay.port}")}
    )
    for _ in range(10):
        chat(proxy)
    assert eventually(lambda: rows_in(ledger_db) == 10)

    relay.cut()
    outage_ends = time.monotonic() + 60
    served = 0
    while time.monotonic() < outage_ends:  # the proxy keeps serving through the outage
        assert chat(proxy)
        served += 1
        time.sleep(0.25)
    assert rows_in(ledger_db) == 10
    relay.restore()

    assert eventually(lambda: rows_in(ledger_db) == 10 + served, timeout_s=30)
    assert rows_in(ledger_db, status="ok") == 10 + served
    relay.close()
