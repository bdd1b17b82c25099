"""`tollgate reconcile` against provider reports in their documented shapes: OpenAI's
organization Costs API (by line item) and Usage API for images (two pages, as a
paginated read saves them), and a reseller's CSV. The ledger is a real SQLite file;
the command runs through its own `main`. Over HTTP, against the simulator's
organization endpoints: tests/e2e/test_reconcile_e2e.py."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from proxy.cli import main
from proxy.finance.reconcile.compare import reconcile
from proxy.finance.reconcile.ledger_figures import LedgerFigures
from proxy.finance.reconcile.provider_reports import ReportError, read_reports
from proxy.ledger import LedgerRow, to_nano
from proxy.ledger.sql import BilledRow, SqlLedger

from .rows import Payer, charged_row

FIXTURES = Path(__file__).parent / "fixtures" / "reconcile"
COSTS, USAGE, ACME_CSV = (
    FIXTURES / "openai-costs-2026-11.json",
    FIXTURES / "openai-usage-images-2026-11.json",
    FIXTURES / "acme-2026-11.csv",
)
OPENAI: Payer = ("openai", "openai/org-recon", "openai-official", "official")
ACME: Payer = ("acme", "acme/acct-recon", "acme-2026-11", "provider")
CONFIG = """
ledger: {url: "sqlite:///ledger.db", journal_dir: journal}
price_tables:
  acme-2026-11:
    {source: provider, provider: acme, effective: 2026-11-01, url: https://acme.example,
     models: {gpt-image-2: {image: {low: {1024x1024: 0.009}}}}}
providers:
  openai: {kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: sk-up, billing_owner: openai/org-recon,
           price_table: openai-official}
  acme: {kind: openai_compatible, base_url: "https://acme.example/v1", api_key: sk-acme, billing_owner: acme/acct-recon,
         price_table: acme-2026-11}
routes:
  gpt-image-2: {targets: [{provider: openai, model: gpt-image-2}], fallbacks: [{provider: acme, model: gpt-image-2}]}
"""


def image(request_id: str, day: int, input_usd: str, output_usd: str, **fields) -> LedgerRow:
    """A gpt-image-2 row on openai's official table, with its two cost lines."""
    lines = [("text_input tokens", input_usd), ("image_output tokens", output_usd)]
    nano = sum(to_nano(Decimal(amount)) or 0 for _, amount in lines)
    return charged_row(
        request_id,
        f"2026-11-{day:02d}T12:00:00.000000Z",
        [(OPENAI, nano)],
        upstream_model="gpt-image-2",
        images=1,
        cost_basis=fields.pop("cost_basis", "usage"),
        cost_lines=[{"model": "gpt-image-2", "item": item, "amount_usd": amount} for item, amount in lines],
        **fields,
    )


def acme_image(request_id: str, day: int) -> LedgerRow:
    line = {"model": "gpt-image-2", "item": "image 1024x1024 low", "amount_usd": "0.009"}
    return charged_row(
        request_id,
        f"2026-11-{day:02d}T08:00:00.000000Z",
        [(ACME, 9_000_000)],
        upstream_model="gpt-image-2",
        images=1,
        cost_basis="usage",
        cost_lines=[line],
    )


ROWS = [
    # 11-01: three images, billed exactly as OpenAI reports
    *(image(f"req_1_{n}", 1, "0.00025", "0.00588") for n in range(3)),
    # 11-02: two images, and one the proxy was killed under: abandoned at its estimate, which
    # is dearer than what OpenAI finished and billed
    *(image(f"req_2_{n}", 2, "0.00025", "0.00588") for n in range(2)),
    charged_row(
        "req_2_abandoned",
        "2026-11-02T13:00:00.000000Z",
        [(OPENAI, 6_330_000)],
        upstream_model="gpt-image-2",
        status="abandoned",
        cost_basis="estimate",
    ),
    # 11-03: an image, and a stream cut short: costed at its estimate (0.02), OpenAI billed 0.01
    image("req_3_ok", 3, "0.00025", "0.00588"),
    image("req_3_cut", 3, "0.0005", "0.0195", cost_basis="estimate"),
    # acme: two images on 11-01, four on 11-02, at its table's 0.009
    *(acme_image(f"req_acme_1_{n}", 1) for n in range(2)),
    *(acme_image(f"req_acme_2_{n}", 2) for n in range(4)),
]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "config.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    sql = SqlLedger("sqlite:///ledger.db")
    with sql.connect() as connection:
        sql.create_schema(connection)
        sql.upsert(connection, [row.record() for row in ROWS])
    return tmp_path


def reconcile_cli(capsys, *flags: str) -> tuple[int, str, str]:
    code = main(["reconcile", "--config", "config.yaml", *flags])
    out, err = capsys.readouterr()
    return code, out, err


def line_of(out: str, day: str, model: str = "gpt-image-2") -> list[str]:
    (found,) = [line.split() for line in out.splitlines() if line.startswith(f"{day}  {model} ")]
    return found


# --- OpenAI's organization reports ---------------------------------------------------------------


def test_openai_costs_and_usage_pages_are_compared_per_day_model_and_line_item(workdir, capsys):
    code, out, err = reconcile_cli(capsys, "--provider", "openai", "--file", str(COSTS), "--file", str(USAGE))
    assert code == 1 and err == ""  # 11-02 and 11-03 are off
    assert out.splitlines()[0].startswith("openai (billing owner openai/org-recon): the ledger against")
    # day, model, ledger req, provider req, ledger USD, provider USD, diff USD, diff %
    assert line_of(out, "2026-11-01") == ["2026-11-01", "gpt-image-2", "3", "3", "0.01839", "0.01839", "0", "+0.00%"]
    assert line_of(out, "2026-11-02") == [
        "2026-11-02", "gpt-image-2", "3", "3", "0.01859", "0.01839", "0.0002", "+1.09%", "OFF",
    ]  # fmt: skip
    # the snapshot OpenAI bills (gpt-image-2-2026-04-21) is the ledger's gpt-image-2
    assert line_of(out, "2026-11-03")[2:] == ["2", "2", "0.02613", "0.01613", "0.01", "+62.00%", "OFF"]
    # each line item under its day: the ledger's input and output against OpenAI's
    third_day = out.split("2026-11-03", 1)[1].splitlines()
    assert third_day[1].split() == ["·", "input", "0.00075", "0.00075", "0"]
    assert third_day[2].split() == ["·", "output", "0.02538", "0.01538", "0.01"]  # the cut stream's estimate
    assert out.rstrip().endswith("2 of 3 days off by more than 1%: 2026-11-02, 2026-11-03")


def test_the_likely_cause_is_named_under_each_day_off(workdir, capsys):
    _, out, _ = reconcile_cli(capsys, "--provider", "openai", "--file", str(COSTS), "--file", str(USAGE))
    after = {day: out.split(day, 1)[1].split("\n2026-11-", 1)[0] for day in ("2026-11-02", "2026-11-03")}
    assert "likely: 1 request the ledger has as `abandoned`" in after["2026-11-02"]
    assert "costed at the estimate ($0.00633)" in after["2026-11-02"]
    assert "likely: 1 streamed or unreported row costed from the estimate, not usage" in after["2026-11-03"]
    assert "$0.02 of the ledger's cost is estimated" in after["2026-11-03"]
    assert "likely" not in out.split("2026-11-01", 1)[1].split("2026-11-02")[0]


def test_a_day_within_the_tolerance_passes_and_the_period_can_be_narrowed(workdir, capsys):
    code, out, _ = reconcile_cli(
        capsys, "--provider", "openai", "--file", str(COSTS), "--file", str(USAGE), "--until", "2026-11-02"
    )
    assert code == 0 and "2026-11-02" not in out.split("\n", 1)[1] and out.rstrip().endswith("1 day, each within 1%")
    code, out, _ = reconcile_cli(
        capsys, "--provider", "openai", "--file", str(COSTS), "--since", "2026-11-02", "--tolerance", "100"
    )
    assert code == 0 and "2026-11-01" not in out.split("\n", 1)[1]
    assert line_of(out, "2026-11-02")[3] == "-"  # the costs alone say nothing of requests


# --- a reseller's CSV ----------------------------------------------------------------------------


def test_a_resellers_csv_finds_a_price_table_that_is_not_the_providers(workdir, capsys):
    code, out, _ = reconcile_cli(capsys, "--provider", "acme", "--file", str(ACME_CSV))
    assert code == 1
    assert line_of(out, "2026-11-01")[2:] == ["2", "2", "0.018", "0.022", "-0.004", "-18.18%", "OFF"]
    assert (
        "likely: the requests agree but the cost does not: $0.009 per request on acme-2026-11 against the "
        "provider's $0.011; the table's per-unit prices do not match the provider's"
    ) in out
    assert line_of(out, "2026-11-02")[2:4] == ["4", "5"]
    assert "likely: the provider counted 1 request more than the ledger has" in out


# --- what cannot be reconciled -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (("--provider", "opnai", "--file", "x.csv"), "no provider 'opnai' in the config; it has: openai, acme"),
        (("--provider", "acme", "--from-api"), "--from-api reads OpenAI's organization reports; 'acme' is of kind"),
        (("--provider", "openai", "--from-api", "--admin-key-env", "UNSET_ADMIN_KEY_VAR"), "set UNSET_ADMIN_KEY_VAR"),
        (("--provider", "acme", "--file", str(ACME_CSV), "--since", "2026-12-01"), "covers no day in the period"),
        (("--provider", "acme", "--file", str(ACME_CSV), "--since", "1 Nov"), "give --since and --until as YYYY-MM-DD"),
        (("--provider", "acme", "--file", str(ACME_CSV), "--tolerance", "-1"), "a percentage of 0 or more"),
        (("--provider", "acme", "--file", "absent.csv"), "absent.csv: cannot read it"),
    ],
)
def test_what_cannot_be_reconciled_exits_2_saying_what_to_change(workdir, capsys, flags, says):
    code, out, err = reconcile_cli(capsys, *flags)
    assert (code, out) == (2, "") and says in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("day,model,count,usd\n", "a provider CSV has the header `date, model, requests, cost_usd`"),
        ("date,model,requests,cost_usd\n2026-11-01,gpt-image-2,two,0.1\n", "line 2: write the date as YYYY-MM-DD"),
        ('{"object": "list", "data": []}', "not a page of OpenAI's organization Costs or Usage API"),
        ('{"object": "page", "data": [', "not valid JSON (line 1"),
        ('{"object": "page", "data": [{"start_time": 1793491200, "results": [{"object": "x"}]}]}', "kind 'x'"),
    ],
)
def test_a_report_that_cannot_be_read_says_where(tmp_path, text, says):
    path = tmp_path / "report"
    path.write_text(text)
    with pytest.raises(ReportError) as raised:
        read_reports([path])
    assert says in str(raised.value) and str(path) in str(raised.value)


# --- the comparison itself -----------------------------------------------------------------------


def test_a_day_the_provider_gives_whole_is_compared_whole(tmp_path):
    """Costs not grouped by line item carry no model: the day's models are summed on both sides."""
    path = tmp_path / "costs.json"
    path.write_text(
        '{"object": "page", "data": [{"object": "bucket", "start_time": 1793491200, "end_time": 1793577600, '
        '"results": [{"object": "organization.costs.result", "amount": {"value": 0.3, "currency": "usd"}, '
        '"line_item": null, "project_id": null}]}], "has_more": false, "next_page": null}'
    )
    report = read_reports([path])
    day = dt.date(2026, 11, 1)
    ledger = {
        (day, "gpt-image-2"): LedgerFigures(requests=1, cost_nanousd=100_000_000),
        (day, "gpt-5.4"): LedgerFigures(requests=2, cost_nanousd=200_000_000),
    }
    (line,) = reconcile(ledger, report, report.days, Decimal(1))
    assert (line.model, line.ledger.requests, line.ledger_usd, line.provider.cost) == (
        "(all models)",
        3,
        Decimal("0.3"),
        Decimal("0.3"),
    )
    assert not line.off and line.diff_pct == 0


def test_a_stream_its_client_closed_is_counted_as_estimated():
    figures = LedgerFigures()
    for basis, nano in (("usage", 5_880_000), ("partial_estimate", 6_250_000), ("estimate", 19_500_000)):
        figures.add(BilledRow("2026-11-03", "gpt-image-2", "client_closed", basis, 0, [], nano, "openai-official"))
    assert (figures.requests, figures.estimated, figures.estimated_nanousd) == (3, 2, 25_750_000)
