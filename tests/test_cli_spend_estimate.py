"""`tollgate spend` and `tollgate estimate`, run through the command's own `main`.
Spend reads a real SQLite ledger; the estimate is checked against what the proxy
itself answers to an `x-tollgate-estimate-only` request for the same thing."""

from __future__ import annotations

import csv
import io
import time
from decimal import Decimal

import orjson
import pytest
from starlette.testclient import TestClient

from proxy.cli import main
from proxy.config import parse_config
from proxy.http.app import create_app
from proxy.ledger import LedgerRow
from proxy.ledger.barrier import Watermarks
from proxy.ledger.sql import SqlLedger
from proxy.serving.gateway import Gateway

from .rows import charged_row

CONFIG = """
ledger:
  url: sqlite:///ledger.db
  journal_dir: journal
price_tables:
  acme-2026-11:
    source: provider
    provider: acme
    effective: 2026-11-01
    url: https://acme.example/pricing
    models:
      gpt-image-2:
        image: {low: {1024x1024: 0.009}, medium: {1024x1024: 0.06, 1024x1536: 0.09}, high: {1024x1024: 0.25}}
        tokens: {text_input: 4.00, image_input: 7.00}
      gpt-5.4:
        tokens: {text_input: 1.25, cached_text_input: 0.125, text_output: 10.00}
      text-embedding-3-small:
        tokens: {text_input: 0.02}
providers:
  openai:
    kind: openai
    api_key: sk-upstream-openai
    billing_owner: openai/org-acme
    price_table: openai-official
    failed_attempts: input_tokens
  acme:
    kind: openai_compatible
    base_url: https://gw.acme.example/v1
    api_key: sk-upstream-acme
    billing_owner: acme/acct-42
    price_table: acme-2026-11
    verified: {owner: a, quota: q, export_rights: e, privacy: p, failed_call_billing: not billed}
routes:
  gpt-image-2:
    targets: [{provider: openai, model: gpt-image-2}]
    fallbacks: [{provider: acme, model: gpt-image-2}]
    retries: 2
    target: {size: 1024x1536, quality: medium}
  gpt-5.4:
    targets: [{provider: acme, model: gpt-5.4}]
    estimate_output_tokens: 500
  embeddings:
    targets: [{provider: acme, model: text-embedding-3-small}]
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A folder like the proxy's own: config, ledger and journal side by side, relative paths."""
    (tmp_path / "config.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def charged(request_id: str, created_at: str, provider: str, owner: str, table: str, nano: int) -> LedgerRow:
    return charged_row(request_id, created_at, [((provider, owner, table, "official"), nano)])


@pytest.fixture
def ledger(workdir):
    sql = SqlLedger("sqlite:///ledger.db")
    with sql.connect() as connection:
        sql.create_schema(connection)
        sql.upsert(
            connection,
            [
                row.record()
                for row in [
                    charged("req_1", "2026-11-01T09:00:00.000000Z", "openai", "openai/org-acme", "openai-official", 1),
                    charged(
                        "req_2",
                        "2026-11-02T09:00:00.000000Z",
                        "openai",
                        "openai/org-acme",
                        "openai-official",
                        41_185_000,
                    ),
                    charged("req_3", "2026-11-02T10:00:00.000000Z", "acme", "acme/acct-42", "acme-2026-11", 10**12 + 7),
                ]
            ],
        )
    return workdir


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- spend ---------------------------------------------------------------------------------------


def test_spend_as_json_is_the_admin_endpoints_document(ledger, capsys):
    code, out, err = run(capsys, "spend", "--config", "config.yaml", "--format", "json")
    assert (code, err) == (0, "")
    assert orjson.loads(out) == {
        "group_by": ["billing_owner", "price_table"],
        "rows": [
            {
                "billing_owner": "acme/acct-42",
                "price_table": "acme-2026-11",
                "requests": 1,
                "cost_usd": "1000.000000007",
            },
            {
                "billing_owner": "openai/org-acme",
                "price_table": "openai-official",
                "requests": 2,
                "cost_usd": "0.041185001",
            },
        ],
        "total_usd": "1000.041185008",
    }


def test_spend_as_csv_by_chosen_fields_and_dates(ledger, capsys):
    code, out, _ = run(
        capsys, "spend", "--config", "config.yaml", "--by", "day,provider", "--since", "2026-11-02", "--format", "csv"
    )
    assert code == 0 and out.endswith("0.041185\n") and not out.endswith("\n\n")
    assert list(csv.DictReader(io.StringIO(out))) == [
        {"day": "2026-11-02", "provider": "acme", "requests": "1", "cost_usd": "1000.000000007"},
        {"day": "2026-11-02", "provider": "openai", "requests": "1", "cost_usd": "0.041185"},
    ]
    code, out, _ = run(capsys, "spend", "--config", "config.yaml", "--until", "2026-11-02", "--format", "csv")
    assert out.splitlines()[1:] == ["openai/org-acme,openai-official,1,0.000000001"]


def test_spend_as_a_table_with_a_total_line(ledger, capsys):
    code, out, _ = run(capsys, "spend", "--config", "config.yaml")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["billing_owner", "price_table", "requests", "cost_usd"]
    assert lines[2].split() == ["acme/acct-42", "acme-2026-11", "1", "1000.000000007"]
    assert lines[3].split() == ["openai/org-acme", "openai-official", "2", "0.041185001"]
    assert lines[-1].split() == ["total", "1000.041185008"]
    assert Decimal(lines[-1].split()[-1]) == Decimal("1000.000000007") + Decimal("0.041185001")


def test_spend_warns_of_journals_no_running_proxy_applies(ledger, capsys):
    """A running proxy's journal is waited for, not warned about; a dead one's waits for a restart."""
    sql = SqlLedger("sqlite:///ledger.db")
    with sql.connect() as connection:  # a running proxy's writer, caught up and alive
        now_us = time.time_ns() // 1000
        Watermarks(sql).mark(connection, "running0", caught_up_us=now_us + 60_000_000, heartbeat_us=now_us)
    (ledger / "journal").mkdir()
    (ledger / "journal" / "running0.000000.jsonl").write_text("")
    code, out, err = run(capsys, "spend", "--config", "config.yaml", "--format", "json")
    assert code == 0 and orjson.loads(out)["total_usd"] == "1000.041185008" and err == ""

    (ledger / "journal" / "0a1b2c.000000.jsonl").write_text("")  # no writer applies it
    code, out, err = run(capsys, "spend", "--config", "config.yaml", "--format", "json")
    assert code == 0 and orjson.loads(out)["total_usd"] == "1000.041185008"
    assert "1 journal file(s) in journal that no running proxy is applying" in err
    assert "the next start replays them" in err


def test_spend_on_a_bad_config_exits_2_with_its_errors(workdir, capsys):
    (workdir / "bad.yaml").write_text("ledger: {url: mysql://x}\nproviders: {}\n")
    code, out, err = run(capsys, "spend", "--config", "bad.yaml")
    assert code == 2 and out == ""
    assert "ledger.url: use sqlite:///PATH" in err and "providers" in err and "routes: required" in err


def test_spend_as_focus_writes_a_line_per_charge_or_per_day(ledger, capsys):
    code, out, err = run(capsys, "spend", "--config", "config.yaml", "--format", "focus", "--since", "2026-11-02")
    assert (code, err) == (0, "")
    lines = list(csv.DictReader(io.StringIO(out)))
    assert [(line["x_RequestId"], line["BilledCost"], line["InvoiceIssuerName"]) for line in lines] == [
        ("req_2", "0.041185", "openai/org-acme"),
        ("req_3", "1000.000000007", "acme/acct-42"),
    ]
    code, out, _ = run(capsys, "spend", "--config", "config.yaml", "--format", "focus", "--aggregate", "daily")
    daily = list(csv.DictReader(io.StringIO(out)))
    assert [(line["ChargePeriodStart"], line["ProviderName"], line["BilledCost"]) for line in daily] == [
        ("2026-11-01T00:00:00Z", "openai", "0.000000001"),
        ("2026-11-02T00:00:00Z", "openai", "0.041185"),
        ("2026-11-02T00:00:00Z", "acme", "1000.000000007"),
    ]


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (("--by", "owner"), "Cannot group spend by 'owner'; group by any of: billing_owner"),
        (("--since", "yesterday"), "'yesterday' is not an ISO 8601 date"),
        (("--format", "focus", "--by", "day"), "not groups: leave out --by"),
        (("--aggregate", "daily"), "--aggregate applies to the FOCUS export only: add --format focus"),
    ],
)
def test_spend_refuses_bad_flags(ledger, capsys, flags, says):
    code, _, err = run(capsys, "spend", "--config", "config.yaml", *flags)
    assert code == 2 and says in err


def test_spend_without_a_database_says_where_it_looked(workdir, capsys):
    code, _, err = run(capsys, "spend", "--config", "config.yaml")
    assert code == 1 and f"no ledger database at {workdir / 'ledger.db'}" in err
    assert not (workdir / "ledger.db").exists()


# --- estimate ------------------------------------------------------------------------------------


def proxy_estimate(workdir, path: str, body: dict) -> dict:
    """What the running proxy answers when asked for the estimate only."""
    loaded = parse_config(CONFIG, {})
    with TestClient(create_app(lambda: Gateway(loaded, {}, simulated={}))) as client:
        response = client.post(f"/v1/{path}", json=body, headers={"x-tollgate-estimate-only": "true"})
    assert response.status_code == 200, response.text
    return response.json()


def test_estimate_of_an_image_route_is_the_proxys_own_estimate(workdir, capsys):
    code, out, _ = run(capsys, "estimate", "--config", "config.yaml", "--model", "gpt-image-2", "--format", "json")
    assert code == 0
    document = orjson.loads(out)
    # the route's launch settings stand in for the size and quality not given
    body = {"model": "gpt-image-2", "prompt": "", "n": 1, "size": "1024x1536", "quality": "medium"}
    assert document == proxy_estimate(workdir, "images/generations", body)
    openai, acme = document["estimates"]
    assert (openai["provider"], openai["fallback"], openai["price_source"]) == ("openai", False, "official")
    assert (acme["provider"], acme["fallback"], acme["estimated_cost_usd"]) == ("acme", True, "0.09")
    assert document["retries"] == 2


def test_estimate_of_an_edit_counts_its_input_images(workdir, capsys):
    argv = ["estimate", "--config", "config.yaml", "--model", "gpt-image-2", "--format", "json"]
    code, out, _ = run(capsys, *argv, "--input-images", "2", "--size", "1024x1024", "--quality", "high", "--n", "3")
    assert code == 0
    document = orjson.loads(out)
    references = [{"image_url": f"https://example.invalid/input-{i}.png"} for i in range(2)]
    body = {"model": "gpt-image-2", "prompt": "", "n": 3, "size": "1024x1024", "quality": "high", "images": references}
    assert document == proxy_estimate(workdir, "images/edits", body)
    acme_lines = document["estimates"][1]["lines"]
    assert [(line["item"], line["quantity"]) for line in acme_lines] == [
        ("image 1024x1024 high", 3),
        ("image_input tokens", 2 * 581),  # two 1024x1024 inputs
    ]


def test_estimate_of_a_chat_route_prices_the_prompt_and_the_assumed_output(workdir, capsys):
    argv = ["estimate", "--config", "config.yaml", "--model", "gpt-5.4", "--prompt", "hello there", "--format", "json"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    document = orjson.loads(out)
    body = {"model": "gpt-5.4", "messages": [{"role": "user", "content": "hello there"}]}
    assert document == proxy_estimate(workdir, "chat/completions", body)
    (estimate,) = document["estimates"]
    assert [(line["item"], line["quantity"]) for line in estimate["lines"]] == [
        ("text_input tokens", 3),
        ("text_output tokens", 500),
    ]


def test_estimate_of_an_embeddings_route(workdir, capsys):
    argv = ["estimate", "--config", "config.yaml", "--model", "embeddings", "--prompt", "hello there"]
    code, out, _ = run(capsys, *argv, "--format", "json")
    assert code == 0
    (estimate,) = orjson.loads(out)["estimates"]
    assert [(line["item"], line["quantity"]) for line in estimate["lines"]] == [("text_input tokens", 3)]


def test_estimate_as_a_table_shows_each_candidate(workdir, capsys):
    argv = ["estimate", "--config", "config.yaml", "--model", "gpt-image-2", "--prompt", "a red bridge"]
    code, out, _ = run(capsys, *argv, "--size", "1536x1024", "--quality", "low")
    assert code == 0
    assert out.splitlines()[0] == (
        "gpt-image-2: images.generate (n=1, size 1536x1024, quality low); 2 retries per provider"
    )
    openai, acme = out.split("\n\n")[1:]
    assert openai.splitlines() == [
        "openai (target)  model gpt-image-2",
        "  billing owner  openai/org-acme",
        "  price table    openai-official (official)",
        "  estimate       0.004755 USD",
        "  with retries   0.004785 USD (a failed try costs 0.000015 USD here)",
        "  cost lines",
        "    gpt-image-2  text_input tokens      3 x 0.000005  = 0.000015",
        "    gpt-image-2  image_output tokens  158 x 0.00003   = 0.00474",
    ]
    # acme prices no image at this size: the reason is shown instead of a figure
    assert acme.splitlines() == [
        "acme (fallback)  model gpt-image-2",
        "  billing owner  acme/acct-42",
        "  unpriced       price table 'acme-2026-11' has no per-image price for gpt-image-2 at size 1536x1024",
    ]


def test_estimate_of_an_unknown_model_is_the_routers_404_message(workdir, capsys):
    code, out, err = run(capsys, "estimate", "--config", "config.yaml", "--model", "gpt-6")
    assert code == 2 and out == ""
    assert "No route for model 'gpt-6'. This proxy routes: embeddings, gpt-5.4, gpt-image-2." in err


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (("--size", "big"), "--size must be WIDTHxHEIGHT"),
        (("--quality", "ultra"), "--quality must be one of low, medium, high"),
        (("--n", "0"), "--n must be 1 or more"),
        (("--input-images", "-1"), "--input-images must be 0 or more"),
    ],
)
def test_estimate_refuses_bad_flags(workdir, capsys, flags, says):
    code, _, err = run(capsys, "estimate", "--config", "config.yaml", "--model", "gpt-image-2", *flags)
    assert code == 2 and says in err


def test_estimate_on_a_bad_config_exits_2(workdir, capsys):
    (workdir / "bad.yaml").write_text(CONFIG.replace("provider: openai, model", "provider: opnai, model", 1))
    code, _, err = run(capsys, "estimate", "--config", "bad.yaml", "--model", "gpt-image-2")
    assert code == 2 and "routes.gpt-image-2.targets[0].provider: unknown provider 'opnai'" in err
