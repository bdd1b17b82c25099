"""A ledger at scale through a real `tollgate serve`, on SQLite and PostgreSQL: the
FOCUS export streams from `/admin/spend` (chunked, the same bytes as `tollgate spend`
prints), and `tollgate ledger archive` moves past months out while the proxy serves:
their rows are answered "archived" with the file that holds them, spend over whole
days still counts them, the proxy keeps recording, and the file holds what left."""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal

import httpx
import pytest

from proxy.finance.archive import read_focus_totals
from proxy.ledger import SqlLedger
from proxy.ledger.partitions import next_month, this_month

from ..databases import postgres_database
from ..rows import ACME, OPENAI, charged_row
from .harness import run_command
from .test_admin_e2e import ADMIN_KEY, admin_config


def months_ago(count: int) -> str:
    month = this_month()
    year, number = int(month[:4]), int(month[5:]) - count
    while number < 1:
        year, number = year - 1, number + 12
    return f"{year:04d}-{number:02d}"


OLD, LAST = months_ago(2), months_ago(1)


def past_rows():
    """Rows of two past months, with ids as the proxy makes them (the time first)."""
    rows = []
    for created_at, charges in (
        (f"{OLD}-03T10:00:00.000000Z", [(OPENAI, 41_175_000)]),
        (f"{OLD}-17T22:30:00.000000Z", [(ACME, 18_000_000), (OPENAI, 25_000)]),
        (f"{LAST}-09T08:00:00.000000Z", [(OPENAI, 6_130_000)]),
    ):
        made = dt.datetime.fromisoformat(created_at.replace("Z", "+00:00"))
        request_id = f"req_{int(made.timestamp() * 1000):012x}{secrets.token_hex(8)}"
        rows.append(charged_row(request_id, created_at, charges, team="growth"))
    return rows


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ledger.db"
    else:
        with postgres_database() as url:
            yield url


def test_past_months_are_archived_while_the_proxy_serves(simulator, start_proxy, ledger_url, tmp_path):
    rows = past_rows()
    sql = SqlLedger(ledger_url)
    with sql.connect() as connection:
        sql.create_schema(connection)
        sql.upsert(connection, [row.record() for row in rows])
    env = {"TOLLGATE_ADMIN_KEY": ADMIN_KEY, "TOLLGATE_LEDGER_URL": ledger_url}
    proxy = start_proxy(admin_config(simulator.url), env=env, folder=tmp_path)
    answered = proxy.client().images.with_raw_response.generate(model="gpt-image-2", prompt="a kite", quality="low")
    period = f"since={OLD}-01&until={next_month(this_month())}-01"

    with httpx.Client(base_url=proxy.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=30) as admin:
        spend_before = admin.get(f"/admin/spend?group_by=day,billing_owner&{period}").json()
        with admin.stream("GET", f"/admin/spend?format=focus&{period}") as export:
            assert export.headers["transfer-encoding"] == "chunked" and "content-length" not in export.headers
            streamed = b"".join(export.iter_bytes()).decode()
        printed = run_command(proxy, "spend", "--format", "focus", "--since", f"{OLD}-01", env=env)
        assert printed.returncode == 0, printed.stderr
        assert streamed == printed.stdout and streamed.count("\n") == 1 + 5  # a header and a line per charge

        archived = run_command(proxy, "ledger", "archive", "--before", LAST, "--to", str(tmp_path / "archive"), env=env)
        assert archived.returncode == 0, archived.stderr
        assert f"{OLD}: 2 rows, 3 charges, 0.0592 USD" in archived.stdout
        assert read_focus_totals(tmp_path / "archive" / f"ledger-{OLD}.focus.csv.gz") == (3, Decimal("0.0592"))

        gone = admin.get(f"/admin/requests/{rows[0].request_id}")
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "request_archived"
        assert f"ledger-{OLD}.rows.jsonl.gz" in gone.json()["error"]["message"]
        assert admin.get(f"/admin/requests/{rows[2].request_id}").status_code == 200  # LAST is not archived
        assert admin.get(f"/admin/spend?group_by=day,billing_owner&{period}").json() == spend_before
        partial = admin.get(f"/admin/spend?since={OLD}-03T12:00:00Z")
        assert partial.status_code == 400 and "as dates (YYYY-MM-DD)" in partial.json()["error"]["message"]

        again = proxy.client().images.with_raw_response.generate(model="gpt-image-2", prompt="a boat", quality="low")
        for raw in (answered, again):  # the proxy recorded before and after, its month untouched
            assert admin.get(f"/admin/requests/{raw.headers['x-request-id']}").json()["status"] == "ok"
