"""The console's pages on a real SQLite ledger: the spend table's figures are the
admin report's own, the chart stacks each day's cost, the downloads are the admin
API's files, requests are found by id and filter, and a row's images are served to
the session from the `files:` store, whether or not `files.url_base` is set."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from proxy.config.schema import FileSettings
from proxy.http.console.chart import COLOURS, PLOT_HEIGHT, daily_chart
from proxy.ledger import SpendGroup
from proxy.ledger.sql import SqlLedger
from proxy.serving.files import FileStore

from .rows import ACME, charged_row
from .test_console import ADMIN_KEY, FINANCE_KEY, REVIEWER_KEY, console, sign_in

AS_ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def client(tmp_path):
    with console(f"sqlite:///{tmp_path}/ledger.db", str(tmp_path / "journal")) as client:
        yield client


def cells(html: str, section: str) -> list[list[str]]:
    body = html.split(f"<{section}>", 1)[1].split(f"</{section}>", 1)[0]
    return [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S) for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


# --- spend -----------------------------------------------------------------------------------


def test_the_spend_table_is_the_admin_report_with_list_price_beside_billed_cost(client):
    sign_in(client, FINANCE_KEY)
    page = client.get("/ui/spend", params={"by": ["provider", "route"], "since": "2026-11-01", "until": "2026-12-01"})
    assert page.status_code == 200 and 'table id="spend"' in page.text
    report = client.get(
        "/admin/spend",
        params={"group_by": "provider,route", "since": "2026-11-01", "until": "2026-12-01"},
        headers=AS_ADMIN,
    ).json()
    body = cells(page.text, "tbody")
    assert [[row[0], row[1], row[2], row[4]] for row in body] == [
        [group["provider"], group["route"], str(group["requests"]), group["cost_usd"]] for group in report["rows"]
    ]
    (footer,) = cells(page.text, "tfoot")
    assert footer[-1] == report["total_usd"] == "0.047080007"
    assert "<svg" in page.text and page.text.count("<rect") == 2  # two days with spend, one provider


def test_the_default_period_is_this_month_so_far(client):
    sign_in(client, FINANCE_KEY)
    page = client.get("/ui/spend").text
    assert re.search(r'id="since" name="since" type="date" value="\d{4}-\d{2}-01"', page)
    assert cells(page, "tfoot")[0][-1] == "0"  # the test rows are from November 2026


def test_the_downloads_are_the_admin_apis_own_files(client):
    sign_in(client, FINANCE_KEY)
    query = {"group_by": "billing_owner,day", "since": "2026-11-01"}
    as_csv = client.get("/ui/spend/export", params={**query, "format": "csv"})
    assert as_csv.text == client.get("/admin/spend", params={**query, "format": "csv"}, headers=AS_ADMIN).text
    assert as_csv.headers["content-disposition"] == 'attachment; filename="tollgate-spend-2026-11-01.csv"'
    focus = client.get("/ui/spend/export", params={"since": "2026-11-01", "format": "focus"})
    assert (
        focus.text
        == client.get("/admin/spend", params={"since": "2026-11-01", "format": "focus"}, headers=AS_ADMIN).text
    )
    bad = client.get("/ui/spend/export", params={"group_by": "colour", "format": "csv"})
    assert bad.status_code == 400 and "Cannot group spend by" in bad.text


def test_a_bad_filter_is_a_400_page_that_says_what_to_change(client):
    sign_in(client, ADMIN_KEY)
    answer = client.get("/ui/spend", params={"since": "last tuesday"})
    assert answer.status_code == 400 and "is not an ISO 8601 date" in answer.text
    answer = client.get("/ui/review", params={"status": "maybe"})
    assert answer.status_code == 400 and "status" in answer.text


def test_the_chart_stacks_each_days_cost_by_the_first_grouping():
    groups = [
        SpendGroup({"day": "2026-11-02", "provider": "openai"}, 2, 30_000_000),
        SpendGroup({"day": "2026-11-02", "provider": "acme"}, 1, 10_000_000),
        SpendGroup({"day": "2026-11-04", "provider": "openai"}, 1, 20_000_000),
    ]
    chart = daily_chart("provider", groups, "2026-11-01", "2026-11-06")
    assert [label.label for label in chart.days] == ["11-01", "11-02", "11-03", "11-04", "11-05"]
    assert chart.series == ("openai", "acme")  # dearest first
    first_day = [bar for bar in chart.bars if bar.title.startswith("2026-11-02")]
    assert [bar.series for bar in first_day] == [0, 1]
    assert sum(bar.height for bar in first_day) == Decimal(PLOT_HEIGHT) * Decimal("0.04") / Decimal("0.05")
    assert first_day[1].y + first_day[1].height == first_day[0].y  # stacked, acme on top of openai
    assert chart.ticks[-1].label == "$0.05" and all(isinstance(bar.height, Decimal) for bar in chart.bars)


def test_grouped_by_day_first_each_day_is_one_bar_of_one_colour():
    groups = [SpendGroup({"day": f"2026-11-{day:02d}"}, 1, day * 1000) for day in range(1, 11)]
    chart = daily_chart("day", groups, None, None)
    assert chart.series == ("cost",) and {bar.series for bar in chart.bars} == {0} and len(chart.bars) == 10


def test_the_chart_keeps_seven_series_and_sums_the_rest_as_others():
    groups = [SpendGroup({"day": "2026-11-02", "team": f"team-{n}"}, 1, (n + 1) * 1000) for n in range(10)]
    chart = daily_chart("team", groups, None, None)
    assert len(chart.series) == COLOURS and chart.series[-1] == "others"
    assert chart.series[0] == "team-9"


# --- requests and images -------------------------------------------------------------------------


def test_requests_are_found_by_id_and_by_filter(client):
    sign_in(client, REVIEWER_KEY)
    found = client.get("/ui/requests", params={"id": "req_chat"}).text
    assert re.findall(r'<tr data-request-id="([^"]+)"', found) == ["req_chat"]
    missing = client.get("/ui/requests", params={"id": "req_<nope>"})
    assert missing.status_code == 200 and "No ledger row for request id &#39;req_&lt;nope&gt;&#39;" in missing.text
    pending = client.get("/ui/requests", params={"review_status": "pending", "route": "gpt-image-2"}).text
    assert re.findall(r'<tr data-request-id="([^"]+)"', pending) == ["req_pending2", "req_pending1"]
    assert client.get("/ui/requests/req_nope").status_code == 404


def test_a_rows_images_are_served_to_the_session_from_the_files_store(tmp_path):
    url, files = f"sqlite:///{tmp_path}/ledger.db", tmp_path / "files"
    files.mkdir()
    (files / "req_0abc-0.png").write_bytes(b"\x89PNG fake")
    with console(url, str(tmp_path / "journal")) as client:
        client.app.state.tollgate.files = FileStore(FileSettings(dir=str(files)))
        row = charged_row("req_0abc", "2026-11-05T09:00:00.000000Z", [(ACME, 9_000_000)], review_status="pending")
        row.file_urls = [(files / "req_0abc-0.png").as_uri()]  # no url_base: a file:// URL
        with SqlLedger(url).connect() as connection:
            SqlLedger(url).upsert(connection, [row.record()])
        assert client.get("/ui/files/req_0abc-0.png").status_code == 303  # no session: sign in first
        sign_in(client, REVIEWER_KEY)
        assert '<img src="/ui/files/req_0abc-0.png"' in client.get("/ui/review").text
        image = client.get("/ui/files/req_0abc-0.png")
        assert image.content == b"\x89PNG fake" and image.headers["cache-control"] == "private, max-age=3600"
        assert client.get("/ui/files/..%2Fledger.db").status_code == 404
