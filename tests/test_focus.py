"""The FOCUS export: the mapping of each ledger charge to FOCUS columns, the money exact
(the file sums to the ledger to the nano-dollar), the daily sum, and the same CSV from
`tollgate spend --format focus` and `GET /admin/spend?format=focus`. The FinOps
Foundation's own validator runs on an export of real traffic in
tests/e2e/test_focus_e2e.py."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest

from proxy.finance.focus import COLUMNS, focus_csv
from proxy.finance.focus.columns import FOCUS_1_2, TOLLGATE, VALIDATOR_NAMES
from proxy.ledger import Charge

from .rows import ACME, OPENAI, charged_row

IMAGE_LINE = {"model": "gpt-image-2", "item": "image 1024x1024 low", "quantity": 2, "unit_usd": "0.009"}
TOKEN_LINES = [
    {"model": "gpt-image-2", "item": "text_input tokens", "quantity": 50, "unit_usd": "0.000005"},
    {"model": "gpt-image-2", "item": "image_output tokens", "quantity": 196, "unit_usd": "0.00003"},
]


def on_acme():
    """Two images on acme's per-image table, which OpenAI's list price puts at less."""
    row = charged_row(
        "req_acme",
        "2026-11-01T09:00:00.250000Z",
        [(ACME, 18_000_000)],
        upstream_model="gpt-image-2",
        finished_at="2026-11-01T09:00:12.100000Z",
        images=2,
        size="1024x1024",
        quality="low",
        team="growth",
        key_id="web-app",
        route_owner="platform-team",
        prompt_version="v7",
        review_status="pending",
        upstream_request_id="req_up_1",
        cost_lines=[IMAGE_LINE],
        cost_basis="usage",
    )
    row.charges[0].list_cost_nanousd, row.charges[0].list_price_table = 12_000_000, "openai-official"
    return row


def on_openai(request_id: str = "req_openai", created_at: str = "2026-11-01T10:00:00.000000Z", **fields):
    row = charged_row(
        request_id,
        created_at,
        [(OPENAI, 6_130_000)],
        upstream_model="gpt-image-2",
        images=1,
        size="1024x1024",
        quality="low",
        cost_lines=TOKEN_LINES,
        cost_basis="usage",
        **fields,
    )
    row.charges[0].list_cost_nanousd, row.charges[0].list_price_table = 6_130_000, "openai-official"
    return row


def fell_back():
    """openai's failed try billed at its estimate, then acme answered: two charges, two owners."""
    row = on_acme()
    row.request_id = "req_fallback"
    row.charges.append(Charge("openai", "openai/org-acme", "openai-official", "official", 25_000, "estimate"))
    return row


def lines(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_columns_are_focus_1_2_then_the_validators_1_0_names_then_tollgates_own():
    assert COLUMNS[: len(FOCUS_1_2)] == FOCUS_1_2
    assert set(VALIDATOR_NAMES.values()) == {"InvoiceIssuer", "Provider", "Publisher", "ResourceID", "ChargeType"}
    assert all(name.startswith("x_") for name in TOLLGATE) and len(set(COLUMNS)) == len(COLUMNS)


def test_a_charge_maps_owner_provider_publisher_costs_and_tollgates_fields():
    (line,) = lines(focus_csv([on_acme()]))
    assert list(line) == list(COLUMNS)
    # who bills, who served, who made the model
    assert line["InvoiceIssuerName"] == line["BillingAccountId"] == line["InvoiceIssuer"] == "acme/acct-42"
    assert line["ProviderName"] == line["Provider"] == "acme"
    assert line["PublisherName"] == line["Publisher"] == "OpenAI"
    # billed on the table that applied, listed on the official one: acme's markup is visible
    assert line["BilledCost"] == line["EffectiveCost"] == line["ContractedCost"] == "0.018"
    assert line["ListCost"] == "0.012" and line["x_ListPriceTable"] == "openai-official"
    assert line["BillingCurrency"] == "USD" and line["ChargeCategory"] == "Usage"
    assert line["ChargeFrequency"] == "Usage-Based" and line["ServiceCategory"] == "AI and Machine Learning"
    # what was bought, in the table's own unit
    assert (line["PricingQuantity"], line["PricingUnit"]) == (line["ConsumedQuantity"], line["ConsumedUnit"])
    assert (line["PricingQuantity"], line["PricingUnit"]) == ("2.0", "Images")
    assert line["ChargeDescription"] == "gpt-image-2 images.generate, 2 images 1024x1024 low on acme-2026-11"
    assert line["SkuId"] == "acme-2026-11/gpt-image-2" and line["SkuPriceId"] == "acme-2026-11/gpt-image-2/images"
    assert line["ServiceName"] == "Images API"
    # periods in whole UTC seconds, the end exclusive; the billing period is the calendar month
    assert (line["ChargePeriodStart"], line["ChargePeriodEnd"]) == ("2026-11-01T09:00:00Z", "2026-11-01T09:00:13Z")
    assert (line["BillingPeriodStart"], line["BillingPeriodEnd"]) == ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
    # Tollgate's own fields, x_-prefixed, and the allocation dimensions as provider-prefixed tags
    assert {name: line[name] for name in ("x_Route", "x_RouteOwner", "x_Team", "x_KeyId", "x_PriceSource")} == {
        "x_Route": "gpt-image-2",
        "x_RouteOwner": "platform-team",
        "x_Team": "growth",
        "x_KeyId": "web-app",
        "x_PriceSource": "provider",
    }
    assert (line["x_RequestId"], line["x_PromptVersion"], line["x_ReviewStatus"]) == ("req_acme", "v7", "pending")
    assert json.loads(line["Tags"]) == {
        "tollgate/route": "gpt-image-2",
        "tollgate/route_owner": "platform-team",
        "tollgate/team": "growth",
    }
    assert line["ListUnitPrice"] == line["RegionId"] == line["CommitmentDiscountId"] == ""  # null


def test_a_token_priced_charge_counts_its_tokens():
    (line,) = lines(focus_csv([on_openai()]))
    assert (line["PricingQuantity"], line["PricingUnit"], line["SkuMeter"]) == ("246.0", "Tokens", "Tokens")
    assert line["ChargeDescription"] == (
        "gpt-image-2 images.generate, 1 image 1024x1024 low: 246 tokens on openai-official"
    )
    assert line["BilledCost"] == line["ListCost"] == "0.00613"


def test_each_charge_is_a_line_under_its_own_owner_and_unbilled_rows_have_none():
    refused = charged_row("req_refused", "2026-11-01T11:00:00.000000Z", [], status="error")
    answered, failed_try = lines(focus_csv([fell_back(), refused]))
    assert (answered["InvoiceIssuerName"], answered["BilledCost"]) == ("acme/acct-42", "0.018")
    assert (failed_try["InvoiceIssuerName"], failed_try["ProviderName"]) == ("openai/org-acme", "openai")
    assert (failed_try["BilledCost"], failed_try["ListCost"]) == ("0.000025", "0.000025")  # no list price: billed
    assert (failed_try["PricingQuantity"], failed_try["PricingUnit"], failed_try["x_CostBasis"]) == (
        "1.0",
        "Requests",
        "estimate",
    )
    assert "a failed attempt, billed at its estimate on openai-official" in failed_try["ChargeDescription"]
    assert answered["x_RequestId"] == failed_try["x_RequestId"] == "req_fallback"


def test_the_files_costs_add_up_to_the_ledgers_to_the_nano_dollar():
    awkward = [
        charged_row(f"req_{index}", "2026-11-02T00:00:00.000000Z", [(OPENAI, nano)])
        for index, nano in enumerate([1, 333_333_333, 333_333_333, 100_000_000, 200_000_000, 10**12 + 7])
    ]
    for daily in (False, True):
        billed = [Decimal(line["BilledCost"]) for line in lines(focus_csv(awkward, daily=daily))]
        assert sum(billed) == Decimal("1000.966666674")
    # plain decimals, always with a fraction: a type-inferring loader would take "1" for an integer
    assert [line["BilledCost"] for line in lines(focus_csv(awkward[-1:]))] == ["1000.000000007"]
    assert (
        lines(focus_csv([charged_row("req_free", "2026-11-02T00:00:00.000000Z", [(OPENAI, 0)])]))[0]["BilledCost"]
        == "0.0"
    )


def test_a_daily_line_sums_a_days_charges_and_keeps_only_what_they_share():
    rows = [
        on_openai("req_1", "2026-11-01T08:00:00.000000Z", team="growth", key_id="web-app"),
        on_openai("req_2", "2026-11-01T17:30:00.000000Z", team="growth", key_id="batch"),
        on_openai("req_3", "2026-11-02T09:00:00.000000Z", team="growth", key_id="web-app"),
        on_acme(),
    ]
    by_day = {
        (line["ChargePeriodStart"][:10], line["ProviderName"]): line for line in lines(focus_csv(rows, daily=True))
    }
    assert set(by_day) == {("2026-11-01", "openai"), ("2026-11-02", "openai"), ("2026-11-01", "acme")}
    first = by_day[("2026-11-01", "openai")]
    assert (first["BilledCost"], first["ListCost"], first["PricingQuantity"]) == ("0.01226", "0.01226", "492.0")
    assert (first["ChargePeriodStart"], first["ChargePeriodEnd"]) == ("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z")
    assert first["x_RequestCount"] == "2" and first["x_Team"] == "growth"  # shared by both
    assert first["x_KeyId"] == first["x_RequestId"] == ""  # they differ: no single value is true
    assert first["ChargeDescription"] == "gpt-image-2 images.generate: 2 requests, 492 tokens on openai-official"
    assert by_day[("2026-11-02", "openai")]["x_RequestId"] == "req_3"  # a day of one request keeps it


@pytest.mark.parametrize(
    ("model", "publisher"),
    [("gpt-5.4-mini", "OpenAI"), ("anthropic/claude-sonnet-4", "Anthropic"), ("gemini-2.5-pro", "Google")],
)
def test_the_publisher_is_the_models_maker(model, publisher):
    row = on_openai()
    row.upstream_model = model
    (line,) = lines(focus_csv([row]))
    assert line["PublisherName"] == publisher


def test_a_model_nobody_is_known_to_make_is_published_by_its_provider():
    row = on_openai()
    row.upstream_model = "house-model-7"
    (line,) = lines(focus_csv([row]))
    assert line["PublisherName"] == "openai"


def test_the_finance_docs_name_every_column_the_export_writes():
    finance = (Path(__file__).resolve().parents[1] / "docs" / "finance.md").read_text()
    missing = [name for name in COLUMNS if f"`{name}`" not in finance and not name.startswith("CommitmentDiscount")]
    assert not missing, missing


def test_a_stream_its_client_closed_says_what_its_cost_rests_on():
    row = on_openai(status="client_closed")
    row.cost_basis = row.charges[0].cost_basis = "partial_estimate"
    (line,) = lines(focus_csv([row]))
    assert (line["x_Status"], line["x_CostBasis"], line["PricingUnit"]) == (
        "client_closed",
        "partial_estimate",
        "Tokens",
    )
    assert line["ChargeDescription"].endswith(
        "on openai-official (the client closed the stream: its estimated input and the output relayed before)"
    )
